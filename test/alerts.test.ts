import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { startDaemon, type Daemon } from '../src/daemon/index.js';
import { assertNothingLeft, jsonApi, scratchDir, testDataDir, until, writeConfig } from './helpers.js';

// The performance monitor end to end: a real daemon whose one-VM pool is
// held empty past pool_empty's `for`; the alert fires, is delivered to a
// webhook receiver in this test with a valid signature (retried after the
// receiver's first answer, a 500), and resolves once the VM is released
// and the pool refills.
const SECRET = 'alerts-test-secret';
const TOKEN = 'test-token-alerts-0123456789';

interface Hook {
  headers: IncomingHttpHeaders;
  body: string;
  answered: number;
}

describe('alerts: a pool held empty fires, reaches a signed webhook (retried after a 500), and resolves', () => {
  const dir = scratchDir();
  const hooks: Hook[] = [];
  let receiver: Server;
  let daemon: Daemon | undefined;
  const api = jsonApi(() => daemon!.url, { authorization: `Bearer ${TOKEN}` });
  /** Deliveries of one alert (the pool is also empty for a moment while it starts: that is another alert). */
  const alertHooks = (id: string) => hooks.filter((h) => h.headers['x-tfc-event'] === 'alert' && JSON.parse(h.body).data.id === id);

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        // The first attempt of every delivery fails: each must come again (same delivery id).
        const answered = hooks.some((h) => h.headers['x-tfc-delivery'] === req.headers['x-tfc-delivery']) ? 200 : 500;
        hooks.push({ headers: req.headers, body, answered });
        res.writeHead(answered).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as AddressInfo).port;
    const config = writeConfig(
      dir.path,
      [
        '[pools.default]',
        'min = 1',
        'max = 1',
        'target = 1',
        'allocate_timeout_ms = 120000',
        '[alerts]',
        'eval_interval_ms = 200',
        '[alerts.rules.pool_empty]',
        'for_ms = 1500',
        '[[alerts.webhooks]]',
        `url = "http://127.0.0.1:${port}/hook"`,
        `secret = "${SECRET}"`,
        'timeout_ms = 2000',
        '',
      ].join('\n'),
    );
    const loaded = loadConfig({ configPath: config, env: { TFC_DATA_DIR: testDataDir() } });
    daemon = await startDaemon(loaded.config, { listen: '127.0.0.1:0', env: { TFC_TOKEN: TOKEN }, logger: pino({ level: 'silent' }) });
  }, 300_000);

  afterAll(async () => {
    await daemon?.close();
    receiver?.closeAllConnections();
    await new Promise((r) => receiver?.close(r));
    dir.remove();
    await assertNothingLeft(testDataDir());
  });

  it('fires, delivers, retries and resolves', async () => {
    await until('pool ready', async () => (await api('GET', '/v1/pools/default')).json.ready >= 1, 300_000);
    const rules = await api('GET', '/v1/alerts/rules');
    expect(rules.json.rules.find((r: { name: string }) => r.name === 'pool_empty')).toMatchObject({ for_ms: 1500, threshold: 0, enabled: true });
    expect(rules.json.webhooks).toEqual([expect.objectContaining({ events: ['alert'] })]);

    // The pool was empty while it started: that alert resolves once an evaluation sees it ready.
    const poolEmpty = async (state: string) =>
      (await api('GET', `/v1/alerts?state=${state}`)).json.alerts.filter((a: { rule: string }) => a.rule === 'pool_empty');
    await until('no active pool_empty alert', async () => (await poolEmpty('active')).length === 0, 30_000);

    const emptiedAt = Date.now();
    const alloc = await api('POST', '/v1/pools/default/allocate', {});
    expect(alloc.status).toBe(201);

    // pending at once, firing 1.5 s later; not before.
    await until('pool_empty pending or firing', async () => (await poolEmpty('active')).length === 1, 10_000);
    const pending = (await poolEmpty('active'))[0];
    expect(Date.parse(pending.started_at)).toBeGreaterThanOrEqual(emptiedAt - 50);
    await until('pool_empty firing', async () => (await poolEmpty('firing')).length === 1, 30_000);
    expect(Date.now() - emptiedAt).toBeGreaterThanOrEqual(1500);
    const firing = (await api('GET', '/v1/alerts?state=firing')).json.alerts.find((a: { rule: string }) => a.rule === 'pool_empty');
    expect(firing).toMatchObject({ state: 'firing', labels: { pool: 'default' }, value: 0, threshold: 0 });
    expect(Date.parse(firing.fired_at) - Date.parse(firing.started_at)).toBeGreaterThanOrEqual(1500);

    await api('DELETE', `/v1/vms/${alloc.json.vm.id}`);
    await until(
      'pool_empty resolved',
      async () => (await api('GET', '/v1/alerts?state=resolved')).json.alerts.some((a: { id: string }) => a.id === firing.id),
      120_000,
    );
    expect((await api('GET', '/v1/alerts')).json.alerts.filter((a: { rule: string }) => a.rule === 'pool_empty')).toEqual([]);
    const all = (await api('GET', '/v1/alerts?state=all')).json.alerts;
    expect(all.find((a: { id: string }) => a.id === firing.id)).toMatchObject({ state: 'resolved', fired_at: firing.fired_at });

    // The receiver saw pending, firing and resolved, each twice (a 500, then the retry), each signed over its raw body.
    const retried = () => alertHooks(firing.id).filter((h) => h.answered === 200).length === 3;
    await until('pending, firing and resolved delivered', async () => retried(), 15_000);
    const seen = alertHooks(firing.id);
    expect(seen.map((h) => [JSON.parse(h.body).data.state, h.answered])).toEqual([
      ['pending', 500],
      ['pending', 200],
      ['firing', 500],
      ['firing', 200],
      ['resolved', 500],
      ['resolved', 200],
    ]);
    for (const i of [0, 2, 4]) expect(seen[i].headers['x-tfc-delivery']).toBe(seen[i + 1].headers['x-tfc-delivery']);
    for (const h of seen) {
      const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(h.body).digest('hex')}`);
      const given = Buffer.from(String(h.headers['x-tfc-signature-256']));
      expect(given.length === expected.length && timingSafeEqual(given, expected)).toBe(true);
      expect(h.headers['content-type']).toBe('application/json');
      expect(JSON.parse(h.body)).toMatchObject({ type: 'alert', data: { id: firing.id, labels: { pool: 'default' } } });
    }

    const log = (await api('GET', '/v1/alerts/deliveries')).json.deliveries;
    expect(log.find((d: { id: string }) => d.id === seen[0].headers['x-tfc-delivery'])).toMatchObject({ status: 'delivered', attempts: 2, http_status: 200 });
  }, 240_000);
});
