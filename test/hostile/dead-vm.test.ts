import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { startDaemon, type Daemon } from '../../src/daemon/index.js';
import { join } from 'node:path';
import { scratchDir, testDataDir, writeConfig, jsonApi, until } from '../helpers.js';
import { assertOwnVmsGone } from './own-leftovers.js';

// A VM that dies while allocated must not keep its pool slot: with max = 1,
// the next allocation can only succeed once the dead VM's slot was freed.
describe('a VM that dies while allocated frees its pool slot (real VMs)', () => {
  const dir = scratchDir('tfc-dead-');
  const HEALTH_MS = 500;
  let daemon: Daemon;
  const auth = { authorization: 'Bearer dead-vm-token-0123456789' };
  const api = jsonApi(() => daemon.url, auth);

  beforeAll(async () => {
    const config = writeConfig(dir.path, `[pools.default]\nmin = 1\nmax = 1\ntarget = 1\nhealth_interval_ms = ${HEALTH_MS}\nallocate_timeout_ms = 120000\n`);
    const loaded = loadConfig({ configPath: config, env: { TFC_DATA_DIR: testDataDir() } });
    daemon = await startDaemon(loaded.config, { listen: '127.0.0.1:0', env: { TFC_TOKEN: auth.authorization.slice(7) }, logger: pino({ level: 'silent' }) });
  });

  afterAll(async () => {
    await daemon?.close();
    dir.remove();
    // Only this process's VMs: other users of the machine share the test data dir.
    assertOwnVmsGone(join(testDataDir(), 'tfc.db'));
  });

  /** Allocates, kills the VM with `kill`, and checks what a user sees afterwards. */
  async function dieWhileAllocated(
    kill: (vm: { id: string; pid: number }) => Promise<void>,
  ): Promise<{ id: string; error: { code: string; message: string } }> {
    const alloc = await api('POST', '/v1/pools/default/allocate', {});
    expect(alloc.status).toBe(201);
    const id: string = alloc.json.vm.id;
    const pid = daemon.service.get(id)!.pid!;
    expect((await api('GET', '/v1/pools/default')).json.allocated).toBe(1);
    const killedAt = Date.now();
    await kill({ id, pid });
    // Detected and recorded: failed, with the reason, and the VMM is gone.
    await until('the VM is recorded failed', async () => (await api('GET', `/v1/vms/${id}`)).json.state === 'failed', 10 * HEALTH_MS + 30_000);
    await until('the slot is freed', async () => (await api('GET', '/v1/pools/default')).json.allocated === 0, 4 * HEALTH_MS + 10_000);
    // A figure for the docs, not an assertion: how long the dead VM held its slot.
    console.log(`[dead-vm] ${id}: slot freed ${Date.now() - killedAt} ms after the kill (health interval ${HEALTH_MS} ms)`);
    const view = (await api('GET', `/v1/vms/${id}`)).json;
    expect(view).toMatchObject({ id, state: 'failed', allocated: false, error: { code: 'VMM_EXITED' } });
    expect(() => process.kill(pid, 0)).toThrow();
    // The slot is usable again: with max = 1 this allocation needs it.
    const next = await api('POST', '/v1/pools/default/allocate', {});
    expect(next.status).toBe(201);
    expect(next.json.vm.id).not.toBe(id);
    const ran = await api('POST', `/v1/vms/${next.json.vm.id}/exec`, { cmd: ['echo', 'alive'] });
    expect(ran.json).toMatchObject({ exit_code: 0, stdout: 'alive\n' });
    expect((await api('DELETE', `/v1/vms/${next.json.vm.id}`)).status).toBe(204);
    return { id, error: view.error };
  }

  it('guest `poweroff -f`: recorded failed with the reason, slot freed, the next allocation served', async () => {
    const { error } = await dieWhileAllocated(async ({ id }) => {
      // The command never answers: the guest is gone. Any answer (or none) is fine.
      const sent = Date.now();
      const r = await api('POST', `/v1/vms/${id}/exec`, { cmd: ['poweroff', '-f'], timeout_ms: 5000 }).catch((e: unknown) => ({ status: 0, json: String(e) }));
      console.log(`[dead-vm] poweroff exec answered ${r.status} ${JSON.stringify(r.json).slice(0, 160)} after ${Date.now() - sent} ms`);
    });
    expect(error.message).toMatch(/exited with code 0 \(the guest powered off/);
  });

  it('VMM killed with SIGKILL: same, with the signal as the reason', async () => {
    const { error } = await dieWhileAllocated(async ({ pid }) => {
      process.kill(pid, 'SIGKILL');
    });
    expect(error.message).toMatch(/killed by SIGKILL/);
  });
});
