import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { startDaemon, type Daemon } from '../src/daemon/index.js';
import { assertNothingLeft, jsonApi, scratchDir, testDataDir, until, writeConfig } from './helpers.js';

// The Terraphim execution API on the daemon with real VMs, driven with the
// request bodies of the Rust client (test/fixtures/terraphim/, written
// from terraphim-ai's vm_execution models.rs and client.rs).
const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/terraphim', name), 'utf8')) as Record<string, unknown>;

describe('Terraphim API over a warm pool of real VMs', () => {
  const dir = scratchDir();
  let daemon: Daemon;
  const auth = { authorization: 'Bearer terraphim-it-token-0123456789' };
  const api = jsonApi(() => daemon.url, auth);

  beforeAll(async () => {
    const config = writeConfig(dir.path, '[pools.default]\nmin = 1\nmax = 3\ntarget = 1\nallocate_timeout_ms = 120000\n');
    const loaded = loadConfig({ configPath: config, env: { TFC_DATA_DIR: testDataDir() } });
    daemon = await startDaemon(loaded.config, {
      listen: '127.0.0.1:0',
      env: { TFC_TOKEN: 'terraphim-it-token-0123456789' },
      logger: pino({ level: 'silent' }),
    });
  });

  afterAll(async () => {
    await daemon?.close();
    dir.remove();
    await assertNothingLeft(testDataDir());
  });

  it('health, provision + poll until running, execute (non-zero exit), agent reuse, history', async () => {
    const health = await fetch(`${daemon.url}/health`);
    expect(health.status).toBe(200);

    // Terraphim's default vm_type works without any config: a built-in alias of the pool "default".
    const created = await api('POST', '/api/vms', { ...fixture('provision-vm-request.json'), vm_type: 'focal-optimized' });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    expect(created.json.vm_type).toBe('focal-optimized');
    let status = '';
    await until('VM running', async () => {
      status = (await api('GET', `/api/vms/${created.json.id}`)).json.status;
      return status === 'running' || status === 'ready';
    });
    expect(status).toBe('running');

    const inVm = await api('POST', '/api/llm/execute', { ...fixture('vm-execute-request.with-vm.json'), vm_id: created.json.id });
    expect(inVm.json).toMatchObject({ vm_id: created.json.id, exit_code: 0, stdout: 'in-given-vm\n', error: null });

    const first = await api('POST', '/api/llm/execute', fixture('vm-execute-request.bash.json'));
    expect(first.status, JSON.stringify(first.json)).toBe(200);
    expect(first.json).toMatchObject({ exit_code: 3, stdout: 'hello from terraphim\n', stderr: 'to-stderr\n', error: null });
    expect(first.json.vm_id).not.toBe(created.json.id);
    const again = await api('POST', '/api/llm/execute', { ...fixture('vm-execute-request.bash.json'), code: 'echo reused' });
    expect(again.json).toMatchObject({ vm_id: first.json.vm_id, exit_code: 0, stdout: 'reused\n' });

    const hist = await api('GET', `/api/vms/${first.json.vm_id}/history?limit=100&failures_only=false`);
    expect(hist.json.total).toBe(2);
    expect(hist.json.entries.map((e: { success: boolean }) => e.success)).toEqual([false, true]);
  }, 300_000);

  it('maps the bridge snapshot and rollback calls onto live snapshots: a file written after the snapshot is gone', async () => {
    const agent = { ...fixture('vm-execute-request.bash.json'), agent_id: 'rollback-agent' };
    const before = await api('POST', '/api/llm/execute', { ...agent, code: 'echo kept > /root/kept.txt' });
    expect(before.json.exit_code).toBe(0);
    const vmId = before.json.vm_id;
    const snap = await api('POST', `/api/vms/${vmId}/snapshots`, {
      name: 'agent-rollback-agent-1700000000',
      description: 'Auto-created snapshot for agent rollback-agent',
    });
    expect(snap.status, JSON.stringify(snap.json)).toBe(201);
    await api('POST', '/api/llm/execute', { ...agent, code: 'echo later > /root/later.txt' });
    const rb = await api('POST', `/api/vms/${vmId}/rollback/${snap.json.snapshot_id}`);
    expect(rb.status, JSON.stringify(rb.json)).toBe(200);
    const after = await api('POST', '/api/llm/execute', {
      ...agent,
      code: 'cat /root/kept.txt; test -e /root/later.txt && echo later-present || echo later-gone',
    });
    expect(after.json).toMatchObject({ vm_id: vmId, stdout: 'kept\nlater-gone\n' });
  }, 300_000);
});
