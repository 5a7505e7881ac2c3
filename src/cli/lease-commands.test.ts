import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '../testing/run-cli.js';

// `tfc pool allocate --ttl-ms` and `tfc vm keepalive` against a stand-in
// daemon answering like the REST API: what is sent, and what the user sees.
const VM = {
  id: 'vm-0123456789ab',
  pool: 'web',
  profile: 'default',
  state: 'running',
  driver: 'qemu',
  accel: 'tcg',
  created_by: 'restore',
  allocated: true,
  owner: null,
  uses: 1,
  phases: [],
  network: null,
  expires_at: '2026-12-01T10:00:00.000Z',
  error: null,
};
let server: Server;
let seen: Array<{ method: string; url: string; body: unknown }> = [];
let dir: string;

beforeAll(async () => {
  server = createServer(async (req, res) => {
    let raw = '';
    for await (const c of req) raw += c;
    const s = { method: req.method ?? '', url: req.url ?? '', body: raw ? JSON.parse(raw) : undefined };
    seen.push(s);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (s.url === '/v1/pools/web/allocate') return json(201, { vm: VM, allocation_ms: 2 });
    if (s.url === `/v1/vms/${VM.id}/keepalive`) {
      const ttl = (s.body as { ttl_ms?: number }).ttl_ms;
      if (ttl !== undefined && ttl > 1000)
        return json(400, {
          error: { code: 'INVALID_ARGUMENT', message: 'ttl_ms 5000 is above the maximum lease of pool web (1000 ms, pools.web.max_lease_ms)' },
        });
      return json(200, { ...VM, expires_at: '2026-12-01T11:00:00.000Z' });
    }
    json(404, { error: { code: 'NOT_FOUND', message: 'no route' } });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  dir = mkdtempSync(join(tmpdir(), 'tfc-cli-lease-'));
  writeFileSync(join(dir, 'tfc.toml'), `data_dir = "${join(dir, 'data')}"\n`);
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  seen = [];
  vi.stubEnv('TFC_URL', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  vi.stubEnv('TFC_TOKEN', 'a-token-of-sixteen-chars');
});
afterEach(() => vi.unstubAllEnvs());
const tfc = (...args: string[]) => runCli(['--config', join(dir, 'tfc.toml'), ...args]);

describe('leases from the CLI', () => {
  it('pool allocate --ttl-ms sends ttl_ms and tells when the lease ends and how to extend it', async () => {
    const r = await tfc('pool', 'allocate', 'web', '--ttl-ms', '60000');
    expect(r.code).toBe(0);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/v1/pools/web/allocate', body: { ttl_ms: 60000 } });
    expect(r.stdout).toBe(`${VM.id}\n`);
    expect(r.stderr).toContain(`lease until 2026-12-01T10:00:00.000Z (extend: tfc vm keepalive ${VM.id})`);
  });

  it('vm keepalive renews (optionally with --ttl-ms) and prints the new expiry; an over-max ttl shows the daemon error', async () => {
    const plain = await tfc('vm', 'keepalive', VM.id);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toBe(`${VM.id} lease until 2026-12-01T11:00:00.000Z\n`);
    expect(seen[0]).toMatchObject({ method: 'POST', url: `/v1/vms/${VM.id}/keepalive`, body: {} });
    const json = await tfc('vm', 'keepalive', VM.id, '--ttl-ms', '500', '--json');
    expect(JSON.parse(json.stdout).expires_at).toBe('2026-12-01T11:00:00.000Z');
    expect(seen[1].body).toEqual({ ttl_ms: 500 });
    const over = await tfc('vm', 'keepalive', VM.id, '--ttl-ms', '5000');
    expect(over.code).not.toBe(0);
    expect(over.stderr).toContain('max_lease_ms');
  });
});
