import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { startDaemon, type Daemon } from '../../src/daemon/index.js';
import { join } from 'node:path';
import { scratchDir, testDataDir, writeConfig, jsonApi, until } from '../helpers.js';
import { assertOwnVmsGone } from './own-leftovers.js';

// Allocation leases through the REST API with real VMs: an allocation that
// is not kept alive is destroyed and its slot freed; keepalive spares it.
describe('allocation leases and keepalive (real VMs)', () => {
  const dir = scratchDir('tfc-lease-');
  let daemon: Daemon;
  const auth = { authorization: 'Bearer lease-token-0123456789ab' };
  const api = jsonApi(() => daemon.url, auth);

  beforeAll(async () => {
    const config = writeConfig(
      dir.path,
      '[pools.default]\nmin = 1\nmax = 2\ntarget = 1\nhealth_interval_ms = 500\nallocate_timeout_ms = 120000\nlease_ms = 300000\nmax_lease_ms = 600000\n',
    );
    const loaded = loadConfig({ configPath: config, env: { TFC_DATA_DIR: testDataDir() } });
    daemon = await startDaemon(loaded.config, { listen: '127.0.0.1:0', env: { TFC_TOKEN: auth.authorization.slice(7) }, logger: pino({ level: 'silent' }) });
  });

  afterAll(async () => {
    await daemon?.close();
    dir.remove();
    // Only this process's VMs: other users of the machine share the test data dir.
    assertOwnVmsGone(join(testDataDir(), 'tfc.db'));
  });

  it('an allocation gets the pool lease by default, and a ttl above max_lease_ms is a 400 naming the maximum', async () => {
    const before = Date.now();
    const a = await api('POST', '/v1/pools/default/allocate', {});
    expect(a.status).toBe(201);
    const expires = Date.parse(a.json.vm.expires_at);
    expect(expires).toBeGreaterThanOrEqual(before + 300_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 300_000);
    expect((await api('GET', `/v1/vms/${a.json.vm.id}`)).json.expires_at).toBe(a.json.vm.expires_at);
    const tooLong = await api('POST', '/v1/pools/default/allocate', { ttl_ms: 600_001 });
    expect(tooLong.status).toBe(400);
    expect(tooLong.json.error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('max_lease_ms') });
    expect(tooLong.json.error.message).toContain('600000');
    expect((await api('GET', '/v1/pools/default')).json.allocated).toBe(1);
    expect((await api('DELETE', `/v1/vms/${a.json.vm.id}`)).status).toBe(204);
  });

  it('an expired lease destroys the VM (recorded "lease expired") and frees its slot; keepalive spares another', async () => {
    const kept = await api('POST', '/v1/pools/default/allocate', { ttl_ms: 1500 });
    expect(kept.status).toBe(201);
    const renewed = await api('POST', `/v1/vms/${kept.json.vm.id}/keepalive`, { ttl_ms: 120_000 });
    expect(renewed.status).toBe(200);
    expect(Date.parse(renewed.json.expires_at)).toBeGreaterThan(Date.parse(kept.json.vm.expires_at) + 60_000);

    const doomed = await api('POST', '/v1/pools/default/allocate', { ttl_ms: 1500 });
    expect(doomed.status).toBe(201);
    const id = doomed.json.vm.id;
    expect((await api('GET', '/v1/pools/default')).json.allocated).toBe(2);
    await until('the expired VM is destroyed', async () => (await api('GET', `/v1/vms/${id}`)).json.state === 'stopped', 60_000);
    expect((await api('GET', `/v1/vms/${id}`)).json).toMatchObject({ state: 'stopped', state_reason: 'lease expired' });
    expect((await api('POST', `/v1/vms/${id}/exec`, { cmd: ['true'] })).status).toBe(404);
    expect((await api('GET', '/v1/pools/default')).json.allocated).toBe(1);

    // Renewed at the same time as the doomed one would have expired: still usable.
    const still = await api('POST', `/v1/vms/${kept.json.vm.id}/exec`, { cmd: ['echo', 'kept'] });
    expect(still.json).toMatchObject({ exit_code: 0, stdout: 'kept\n' });
    // The freed slot serves a new allocation (max = 2, one held).
    const next = await api('POST', '/v1/pools/default/allocate', { ttl_ms: 60_000 });
    expect(next.status).toBe(201);
    for (const vm of [kept.json.vm.id, next.json.vm.id]) expect((await api('DELETE', `/v1/vms/${vm}`)).status).toBe(204);
  });

  it('keepalive answers clearly for an unknown VM, an idle VM and a ttl over the maximum', async () => {
    expect((await api('POST', '/v1/vms/vm-000000000000/keepalive', {})).json.error.code).toBe('VM_NOT_FOUND');
    await until('a ready VM', async () => (await api('GET', '/v1/pools/default')).json.ready >= 1);
    const idle = (await api('GET', '/v1/vms')).json.vms.find((v: { allocated: boolean; state: string }) => !v.allocated && v.state === 'running');
    const r = await api('POST', `/v1/vms/${idle.id}/keepalive`, {});
    expect(r.status).toBe(409);
    expect(r.json.error).toMatchObject({ code: 'INVALID_STATE', message: expect.stringContaining('not allocated') });
    const a = await api('POST', '/v1/pools/default/allocate', {});
    const over = await api('POST', `/v1/vms/${a.json.vm.id}/keepalive`, { ttl_ms: 10_000_000 });
    expect(over.status).toBe(400);
    expect(over.json.error.message).toContain('max_lease_ms');
    // No body at all renews with the allocation's own TTL.
    const plain = await fetch(`${daemon.url}/v1/vms/${a.json.vm.id}/keepalive`, { method: 'POST', headers: auth });
    expect(plain.status).toBe(200);
    expect((await api('DELETE', `/v1/vms/${a.json.vm.id}`)).status).toBe(204);
  });
});
