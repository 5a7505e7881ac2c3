import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { pino } from 'pino';
import { startDaemon, type Daemon } from '../src/daemon/index.js';
import { assertNothingLeft, scratchDir, testDataDir, writeConfig } from './helpers.js';

// The daemon in-process with real VMs: golden snapshot, warm pool, REST API over real HTTP.
describe('tfc serve: REST API over a warm pool of real VMs', () => {
  const dir = scratchDir();
  let daemon: Daemon;
  let auth: Record<string, string>;
  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = auth) => {
    const res = await fetch(`${daemon.url}${path}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
  };
  const until = async (cond: () => Promise<boolean>, ms = 60_000) => {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error('condition not reached in time');
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  beforeAll(async () => {
    const config = writeConfig(dir.path, '[pools.default]\nmin = 1\nmax = 2\ntarget = 1\nhealth_interval_ms = 500\nallocate_timeout_ms = 60000\n');
    const loaded = loadConfig({ configPath: config, env: { TFC_DATA_DIR: testDataDir() } });
    daemon = await startDaemon(loaded.config, { listen: '127.0.0.1:0', env: { TFC_TOKEN: 'test-token-0123456789' }, logger: pino({ level: 'silent' }) });
    auth = { authorization: 'Bearer test-token-0123456789' };
  });

  afterAll(async () => {
    await daemon?.close();
    dir.remove();
    await assertNothingLeft(testDataDir());
  });

  it('serves health without a token and everything else only with it', async () => {
    const health = await api('GET', '/v1/health', undefined, {});
    expect(health.status).toBe(200);
    expect(health.json.status).toBe('ok');
    const denied = await api('GET', '/v1/pools', undefined, {});
    expect(denied.status).toBe(401);
    expect(denied.json.error.code).toBe('UNAUTHORIZED');
    expect(denied.headers.get('www-authenticate')).toBe('Bearer');
    const wrong = await api('GET', '/v1/pools', undefined, { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
  });

  it('publishes an OpenAPI document covering the routes', async () => {
    const doc = await api('GET', '/v1/openapi.json', undefined, {});
    expect(doc.json.openapi).toMatch(/^3\./);
    for (const path of ['/v1/pools', '/v1/pools/{name}/allocate', '/v1/vms/{id}', '/v1/vms/{id}/exec', '/v1/vms/{id}/files']) {
      expect(Object.keys(doc.json.paths)).toContain(path);
    }
  });

  it('prewarms the pool to its target', async () => {
    await until(async () => (await api('GET', '/v1/pools/default')).json.ready >= 1);
    const pool = (await api('GET', '/v1/pools/default')).json;
    expect(pool).toMatchObject({ name: 'default', profile: 'minimal', min: 1, max: 2, mode: 'fresh' });
  });

  it('allocates a ready clone, runs commands and moves files in it, and releases it', async () => {
    const alloc = await api('POST', '/v1/pools/default/allocate', {});
    expect(alloc.status).toBe(201);
    const vm = alloc.json.vm;
    expect(vm).toMatchObject({ pool: 'default', state: 'running', allocated: true, created_by: 'restore' });
    expect(alloc.json.allocation_ms).toBeGreaterThan(0);
    expect(vm.phases.map((p: { name: string }) => p.name)).toEqual(['prepare', 'spawn_vmm', 'load_snapshot', 'resume', 'agent_ready', 'refresh_guest']);

    const exec = await api('POST', `/v1/vms/${vm.id}/exec`, { cmd: ['sh', '-c', 'echo "$X"; cat; exit 3'], env: { X: 'hi' }, stdin: 'in' });
    expect(exec.json).toMatchObject({ exit_code: 3, stdout: 'hi\nin', stderr: '' });

    const bytes = Buffer.from([0, 1, 2, 254, 255]);
    const put = await fetch(`${daemon.url}/v1/vms/${vm.id}/files?path=/root/up.bin`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(put.status).toBe(204);
    const got = await fetch(`${daemon.url}/v1/vms/${vm.id}/files?path=/root/up.bin`, { headers: auth });
    expect(Buffer.compare(Buffer.from(await got.arrayBuffer()), bytes)).toBe(0);

    expect((await api('POST', `/v1/vms/${vm.id}/pause`)).json.state).toBe('paused');
    const paused = await api('POST', `/v1/vms/${vm.id}/exec`, { cmd: ['true'] });
    expect(paused.status).toBe(409);
    expect(paused.json.error).toMatchObject({ code: 'INVALID_STATE', message: expect.stringContaining('it is paused') });
    expect((await api('POST', `/v1/vms/${vm.id}/resume`)).json.state).toBe('running');

    expect((await api('DELETE', `/v1/vms/${vm.id}`)).status).toBe(204);
    expect((await api('GET', `/v1/vms/${vm.id}`)).json.state).toBe('stopped');
    // Refilled back to target.
    await until(async () => (await api('GET', '/v1/pools/default')).json.ready >= 1);
  });

  it('refuses to touch an idle pool VM (it must stay fresh for the next allocation)', async () => {
    await until(async () => (await api('GET', '/v1/pools/default')).json.ready >= 1);
    const idle = (await api('GET', '/v1/vms')).json.vms.find((v: { allocated: boolean }) => !v.allocated);
    const r = await api('POST', `/v1/vms/${idle.id}/exec`, { cmd: ['true'] });
    expect(r.status).toBe(409);
    expect(r.json.error).toMatchObject({ code: 'INVALID_STATE', message: expect.stringContaining('allocate') });
  });

  it('exports Prometheus metrics: restore phases, allocation latency, pool gauges', async () => {
    const res = await fetch(`${daemon.url}/v1/metrics`, { headers: auth });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/tfc_vm_phase_seconds_count\{kind="restore",phase="load_snapshot",driver="qemu"\} [1-9]/);
    expect(text).toMatch(/tfc_allocation_seconds_count\{pool="default"\} [1-9]/);
    expect(text).toMatch(/tfc_pool_target\{pool="default"\} \d/);
    expect((await fetch(`${daemon.url}/v1/metrics`)).status).toBe(401);
  });

  it('answers bad input with clear errors', async () => {
    const noCmd = await api('POST', '/v1/pools/default/allocate', { bogus: 1 });
    expect(noCmd.status).toBe(400);
    expect(noCmd.json.error.code).toBe('INVALID_ARGUMENT');
    expect((await api('POST', '/v1/pools/nope/allocate', {})).json.error).toMatchObject({
      code: 'POOL_NOT_FOUND',
      message: expect.stringContaining('default'),
    });
    expect((await api('GET', '/v1/vms/vm-000000000000')).status).toBe(404);
    const notFound = await api('POST', '/v1/vms/vm-000000000000/exec', { cmd: ['true'] });
    expect(notFound.json.error.code).toBe('VM_NOT_FOUND');
  });

  it('fails with 503 POOL_EXHAUSTED and Retry-After when empty at max', async () => {
    const a = await api('POST', '/v1/pools/default/allocate', {});
    const b = await api('POST', '/v1/pools/default/allocate', {});
    expect([a.status, b.status]).toEqual([201, 201]);
    const c = await api('POST', '/v1/pools/default/allocate', { timeout_ms: 200 });
    expect(c.status).toBe(503);
    expect(c.json.error.code).toBe('POOL_EXHAUSTED');
    expect(Number(c.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await api('DELETE', `/v1/vms/${a.json.vm.id}`);
    await api('DELETE', `/v1/vms/${b.json.vm.id}`);
  });

  it('replaces an idle VM whose VMM was killed', async () => {
    await until(async () => (await api('GET', '/v1/pools/default')).json.ready >= 1);
    const [idle] = daemon.pools
      .get('default')
      .allMembers()
      .filter((m) => m.status === 'ready');
    process.kill(idle.vm.pid!, 'SIGKILL');
    await until(async () => {
      const ids = daemon.pools
        .get('default')
        .allMembers()
        .map((m) => m.vm.id);
      return !ids.includes(idle.vm.id) && (await api('GET', '/v1/pools/default')).json.ready >= 1;
    });
  });
});
