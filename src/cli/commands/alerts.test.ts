import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { runCli } from '../../testing/run-cli.js';

// `tfc alerts`, `tfc alerts rules`, `tfc alerts deliveries` against a
// stand-in daemon answering like the API: what the user sees.
const ALERT = {
  id: 'a-1',
  rule: 'pool_empty',
  state: 'firing',
  labels: { pool: 'web' },
  value: 0,
  threshold: 0,
  summary: 'pool web has 0 ready VMs (target 2, 0 booting, 2 allocated)',
  started_at: '2026-12-01T10:00:00.000Z',
  fired_at: '2026-12-01T10:00:30.000Z',
  resolved_at: null,
  updated_at: '2026-12-01T10:00:30.000Z',
};

let server: Server;
let dir: string;
let configPath: string;
let urls: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    urls.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/json' });
    if (req.url?.startsWith('/v1/alerts/deliveries')) {
      res.end(
        JSON.stringify({
          deliveries: [
            {
              id: 'd1',
              webhook: 'https://hooks.example/tfc',
              event_id: 42,
              event_type: 'alert',
              status: 'delivered',
              attempts: 2,
              http_status: 200,
              error: null,
              latency_ms: 3.2,
              created_at: '2026-12-01T10:00:30.000Z',
              finished_at: '2026-12-01T10:00:31.000Z',
            },
          ],
        }),
      );
    } else res.end(JSON.stringify({ alerts: req.url?.includes('state=resolved') ? [] : [ALERT] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  dir = mkdtempSync(join(tmpdir(), 'tfc-cli-alerts-'));
  configPath = join(dir, 'tfc.toml');
  writeFileSync(
    configPath,
    `data_dir = "${join(dir, 'data')}"\n[alerts.rules.pool_empty]\nfor_ms = 45000\n[alerts.rules.allocation_p99]\nthreshold = 12\n[profiles.lean]\nboot_level = "sub2second"\n`,
  );
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  urls = [];
  vi.stubEnv('TFC_URL', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  vi.stubEnv('TFC_TOKEN', 'a-token-of-sixteen-chars');
  vi.stubEnv('TFC_DATA_DIR', '');
});
afterEach(() => vi.unstubAllEnvs());

const tfc = (...args: string[]) => runCli(['--config', configPath, ...args]);

describe('tfc alerts', () => {
  it('prints active alerts as a table, or every kept alert with --all, or JSON', async () => {
    const r = await tfc('alerts');
    expect(r.code).toBe(0);
    expect(urls).toEqual(['/v1/alerts?state=active']);
    expect(r.stdout).toMatch(/│ pool_empty │ firing │ pool=web │ 0\s+│ 0\s+│ 10:00:00 │ 10:00:30 │\s+│ pool web has 0 ready VMs/);
    await tfc('alerts', '--all');
    expect(urls[1]).toBe('/v1/alerts?state=all');
    const none = await tfc('alerts', '--state', 'resolved');
    expect(none.stdout).toBe('no alerts\n');
    const json = await tfc('alerts', '--json');
    expect(JSON.parse(json.stdout)).toEqual({ alerts: [ALERT] });
  });

  it('refuses an unknown --state without asking the daemon', async () => {
    const r = await tfc('alerts', '--state', 'hot');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--state "hot" is not one of active, pending, firing, resolved, all/);
    expect(urls).toEqual([]);
  });

  it('rules prints a Prometheus rules file with the config thresholds, without a daemon', async () => {
    const r = await tfc('alerts', 'rules');
    expect(r.code).toBe(0);
    expect(urls).toEqual([]);
    const rules = (parse(r.stdout) as { groups: Array<{ rules: Array<{ alert: string; expr: string; for: string }> }> }).groups[0].rules;
    const byName = Object.fromEntries(rules.map((x) => [x.alert, x]));
    expect(byName.TfcPoolEmpty.for).toBe('45s');
    expect(byName.TfcAllocationP99.expr).toMatch(/> 0\.012$/);
    expect(byName.TfcBootTimeLean.expr).toMatch(/profile="lean".*> 2$/);
  });

  it('deliveries prints the webhook delivery log', async () => {
    const r = await tfc('alerts', 'deliveries', '--limit', '5');
    expect(r.code).toBe(0);
    expect(urls).toEqual(['/v1/alerts/deliveries?limit=5']);
    expect(r.stdout).toMatch(/10:00:31 │ https:\/\/hooks\.example\/tfc │ alert #42 │ delivered │ 2\s+│ 200\s+│ 3\.2/);
    const bad = await tfc('alerts', 'deliveries', '--limit', '0');
    expect(bad.stderr).toMatch(/--limit "0" must be an integer from 1 to 1000/);
  });
});
