import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { startDaemon, type Daemon } from '../src/daemon/index.js';
import { assertNothingLeft, jsonApi, REPO, scratchDir, testDataDir, until, writeConfig } from './helpers.js';

// The dashboard in a real browser (Debian's chromium, driven by playwright-core)
// against a real daemon with a small QEMU pool: an allocation made through the
// API shows up on the page. The screenshot is kept as an artifact.
const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'ui-test-token-0123456789';
const SCREENSHOT = join(REPO, 'test-artifacts', 'ui.png');
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`ui-browser.test.ts skipped: ${CHROMIUM} is missing (apt-get install chromium; scripts/setup.sh installs it)`);

describe.skipIf(!hasChromium)('dashboard (/ui) in chromium over a real pool', () => {
  const dir = scratchDir();
  let daemon: Daemon | undefined;
  let browser: Browser | undefined;
  let page: Page;
  const allocated: string[] = [];
  const pageErrors: string[] = [];
  const api = jsonApi(() => daemon!.url, { authorization: `Bearer ${TOKEN}` });
  /** Waits until the selector matches a visible element; `ms` counts from now. */
  const visible = (selector: string, ms = 10_000) => page.locator(selector).first().waitFor({ state: 'visible', timeout: ms });
  const text = async (selector: string) => (await page.locator(selector).first().textContent())?.trim() ?? '';

  beforeAll(async () => {
    // A restore target no clone can meet, so the monitor has an alert firing for the page to show.
    const config = writeConfig(
      dir.path,
      '[pools.default]\nmin = 1\nmax = 2\ntarget = 1\nallocate_timeout_ms = 120000\n' +
        '[profiles.minimal]\ntarget_ms = 1\n[alerts]\neval_interval_ms = 500\n[alerts.rules.restore_time]\nfor_ms = 0\n',
    );
    const loaded = loadConfig({ configPath: config, env: { TFC_DATA_DIR: testDataDir() } });
    daemon = await startDaemon(loaded.config, { listen: '127.0.0.1:0', env: { TFC_TOKEN: TOKEN }, logger: pino({ level: 'silent' }) });
    await until('pool ready', async () => (await api('GET', '/v1/pools/default')).json.ready >= 1, 300_000);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.on('pageerror', (err) => pageErrors.push(`uncaught: ${err.message}`));
    page.on('console', (msg) => {
      // A CSP violation is reported on the console; so is any other script error.
      if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) pageErrors.push(msg.text());
    });
  });

  afterAll(async () => {
    await browser?.close();
    for (const id of allocated) await api('DELETE', `/v1/vms/${id}`).catch(() => undefined);
    await daemon?.close();
    dir.remove();
    await assertNothingLeft(testDataDir());
  });

  it('asks for the token, refuses a wrong one, and shows the pool with the right one', async () => {
    const res = await page.goto(`${daemon!.url}/ui`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toMatch(/^default-src 'self'/);
    await visible('#login');
    expect(await page.locator('#dashboard').isHidden()).toBe(true);

    await page.fill('#token', 'not-the-token');
    await page.click('#login button[type=submit]');
    await page.locator('#login-error', { hasText: 'refused' }).waitFor({ timeout: 10_000 });
    expect(await page.evaluate(() => sessionStorage.getItem('tfc.token'))).toBeNull();

    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await visible('#pools-body tr[data-pool="default"]');
    await page.waitForFunction(() => Number(document.querySelector('#pools-body tr[data-pool="default"] td.ready')?.textContent) >= 1, null, {
      timeout: 10_000,
    });
    expect(await text('#pools-body tr[data-pool="default"] td.target')).toBe('1');
    expect(await page.evaluate(() => sessionStorage.getItem('tfc.token'))).toBe(TOKEN);
  });

  it('shows a VM allocated through the API within seconds, with its allocation latency', async () => {
    // The owner is the client's own text: it must show as text, never as markup.
    const owner = '<img src=x>ui-test & "co"';
    const alloc = await api('POST', '/v1/pools/default/allocate', { owner });
    expect(alloc.status).toBe(201);
    const id: string = alloc.json.vm.id;
    allocated.push(id);
    const started = Date.now();
    const row = `#vms-body tr[data-vm-id="${id}"]`;
    await visible(`${row} td.allocated:text-is("allocated")`, 8000);
    const shownMs = Date.now() - started;
    expect(await text(`${row} td.state`)).toBe('running');
    await page.waitForFunction(([cell, want]) => document.querySelector(cell)?.textContent === want, [`${row} td.owner`, owner] as const, { timeout: 8000 });
    expect(await page.locator('#dashboard img').count()).toBe(0);
    await page.waitForFunction(() => Number(document.querySelector('#pools-body tr[data-pool="default"] td.allocated')?.textContent) >= 1, null, {
      timeout: 8000,
    });

    // The event stream brings the allocation's latency (the page polls for the rest).
    await visible('#events-status[data-state="live"]', 10_000);
    const series = '#latency [data-series="allocation"]';
    await visible(`${series} ol.recent li:has-text("${id}")`, 8000);
    expect(Number(await text(`${series} .count`))).toBeGreaterThanOrEqual(1);
    expect(await text(`${series} .p50`)).toMatch(/^\d+(\.\d+)? m?s$/);
    expect(await text('#event-log')).toContain(id);
    console.info(`[ui-browser] allocation of ${id} on the page ${shownMs} ms after the API answered`);

    // Details from GET /v1/vms/{id}: the restore phases.
    await page.click(row);
    await visible('#vm-detail svg.phases');
    expect(await text('#vm-detail svg.phases')).toContain('load_snapshot');
    expect(await text('#vm-detail h3')).toContain(id);
    mkdirSync(join(REPO, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  it('shows the firing alert of the performance monitor', async () => {
    await page.locator('#alerts li.firing', { hasText: 'restore_time' }).waitFor({ timeout: 15_000 });
    const alerts = (await api('GET', '/v1/alerts')).json.alerts as Array<{ id: string; rule: string; summary: string }>;
    const firing = alerts.find((a) => a.rule === 'restore_time');
    expect(firing).toBeDefined();
    const item = `#alerts li[data-alert="${firing!.id}"]`;
    expect(await text(item)).toContain(firing!.summary);
    expect(await text(item)).toContain('profile=minimal');
    expect(await text(item)).not.toContain('undefined');
  });

  it('says "events not available" and "alerts not available" to a daemon without those routes, and still shows the pool', async () => {
    const older = await browser!.newPage();
    try {
      // A daemon from before /v1/events and /v1/alerts answers them 404.
      await older.route(/\/v1\/(events|alerts)(\?.*)?$/, (route) =>
        route.fulfill({ status: 404, contentType: 'application/json', body: '{"error":{"code":"NOT_FOUND","message":"no route"}}' }),
      );
      await older.goto(`${daemon!.url}/ui`);
      await older.fill('#token', TOKEN);
      await older.click('#login button[type=submit]');
      await older.locator('#events-status', { hasText: 'events not available' }).waitFor({ timeout: 10_000 });
      await older.locator('#alerts', { hasText: 'alerts not available' }).waitFor({ timeout: 10_000 });
      await older.locator('#latency [data-series="allocation"]', { hasText: 'events not available' }).waitFor({ timeout: 10_000 });
      await older.locator('#pools-body tr[data-pool="default"]').waitFor({ timeout: 10_000 });
    } finally {
      await older.close();
    }
  });

  it('drops a released VM, keeps the token over a reload, and forgets it on request', async () => {
    const id = allocated.pop()!;
    expect((await api('DELETE', `/v1/vms/${id}`)).status).toBe(204);
    await page.locator(`#vms-body tr[data-vm-id="${id}"]`).waitFor({ state: 'detached', timeout: 8000 });

    await page.reload();
    await visible('#pools-body tr[data-pool="default"]');
    expect(await page.locator('#login').isHidden()).toBe(true);

    await page.click('#sign-out');
    await visible('#login');
    expect(await page.evaluate(() => sessionStorage.getItem('tfc.token'))).toBeNull();
    expect(pageErrors).toEqual([]);
  });
});
