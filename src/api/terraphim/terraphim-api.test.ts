import type { FastifyInstance } from 'fastify';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig, loadConfig, type PoolConfig, type Profile } from '../../config/index.js';
import { PoolManager } from '../../pool/index.js';
import { SnapshotManager } from '../../snapshot/index.js';
import { openDatabase, TerraphimHistoryRepository } from '../../store/index.js';
import { canRunFakeVms, compileFakeGuest, openFakeRuntime, type FakeRuntime } from '../../testing/fake-runtime.js';
import { buildApp } from '../app.js';
import type { ApiDeps } from '../deps.js';
import { DEFAULT_HISTORY_BOUNDS } from './history.js';
import { terraphimOptionsFromConfig } from './options.js';

// The Terraphim API on the fake driver: a real pool of clones, the real
// agent (on this host) runs the programs. Request bodies are the fixtures
// in test/fixtures/terraphim/, written from the Rust serde types
// (VmExecuteRequest, ParseExecuteRequest in terraphim-ai models.rs; the
// provision body of client.rs).
const TOKEN = 'terraphim-test-token-0123';
const auth = { authorization: `Bearer ${TOKEN}` };
const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(import.meta.dirname, '../../../test/fixtures/terraphim', name), 'utf8')) as Record<string, unknown>;

if (!canRunFakeVms) console.warn('Terraphim API tests skipped: gcc is not installed');

describe.skipIf(!canRunFakeVms)('Terraphim API (fake driver, real agent)', () => {
  let guest: Awaited<ReturnType<typeof compileFakeGuest>>;
  let rt: FakeRuntime;
  let pools: PoolManager;
  let app: FastifyInstance;
  let workDir: string;
  let deps: ApiDeps;

  beforeAll(async () => {
    guest = await compileFakeGuest();
    rt = openFakeRuntime(guest.agentBinary);
    workDir = mkdtempSync(join(tmpdir(), 'tfc-terraphim-test-'));
    const config = defaultConfig({ env: {} });
    config.profiles[config.defaultProfile] = rt.profile as Profile;
    const pool: PoolConfig = {
      name: 'sandbox',
      profile: config.defaultProfile,
      min: 1,
      max: 8,
      target: 1,
      mode: 'fresh',
      prewarmState: 'running',
      rewarm: false,
      refillConcurrency: 2,
      strategy: 'first-available',
      strategySeed: 1,
      maxUses: 100,
      maxAgeMs: 3_600_000,
      healthIntervalMs: 3_600_000,
      allocateTimeoutMs: 20_000,
      leaseMs: 600_000,
      maxLeaseMs: 3_600_000,
    };
    config.pools = { sandbox: pool };
    pools = new PoolManager(config, new SnapshotManager(rt.layout, rt.service), rt.service);
    await pools.start();
    deps = {
      token: TOKEN,
      version: '0.0.0-test',
      pools,
      service: rt.service,
      repo: rt.repo,
      limits: { maxExecTimeoutMs: 60_000 },
      terraphim: { vmTypes: { 'focal-optimized': 'sandbox' }, dir: workDir },
    } as unknown as ApiDeps;
    app = await buildApp(deps);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await pools?.stop();
    await rt?.close();
    guest?.remove();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  const callOn = async (on: FastifyInstance, method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, headers: Record<string, string> = auth) => {
    const res = await on.inject({ method, url, headers, ...(body === undefined ? {} : { payload: body as object }) });
    return { status: res.statusCode, json: res.body ? JSON.parse(res.body) : undefined };
  };
  const release = async (vmId: string) => {
    await pools.poolOf(vmId)?.release(vmId);
  };
  const call = (method: 'GET' | 'POST', url: string, body?: unknown, headers: Record<string, string> = auth) => callOn(app, method, url, body, headers);

  it('GET /health answers 200 without a token (client.rs health_check sends none)', async () => {
    const r = await call('GET', '/health', undefined, {});
    expect(r.status).toBe(200);
    expect(r.json.status).toBe('healthy');
  });

  it('requires the bearer token on /api routes, as client.rs sends it (bearer_auth)', async () => {
    const none = await call('POST', '/api/llm/execute', fixture('vm-execute-request.bash.json'), {});
    expect(none.status).toBe(401);
    expect(none.json.error.code).toBe('UNAUTHORIZED');
    const wrong = await call('GET', '/api/llm/vm-pool/x', undefined, { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
  });

  it('provisions a VM (vm_type alias) and the poll-until-running flow sees "running"', async () => {
    const body = { ...fixture('provision-vm-request.json'), vm_type: 'focal-optimized' };
    const created = await call('POST', '/api/vms', body);
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    expect(created.json).toMatchObject({ name: 'agent-agent-fixture-3-vm', vm_type: 'focal-optimized' });
    expect(created.json.id).toMatch(/^vm-/);
    // client.rs wait_for_vm_ready: GET /api/vms/{id} until status is "running" or "ready".
    const deadline = Date.now() + 10_000;
    let status = '';
    let polled: Record<string, unknown> = {};
    while (Date.now() < deadline) {
      const r = await call('GET', `/api/vms/${created.json.id}`);
      expect(r.status).toBe(200);
      polled = r.json;
      status = String(r.json.status);
      if (status === 'running' || status === 'ready') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe('running');
    expect(polled).toMatchObject({ id: created.json.id, name: 'agent-agent-fixture-3-vm', vm_type: 'focal-optimized' });
    expect(Number.isNaN(Date.parse(String(polled.created_at)))).toBe(false);

    // VmExecuteRequest with vm_id: runs in that VM, and its history has the entry.
    const exec = await call('POST', '/api/llm/execute', { ...fixture('vm-execute-request.with-vm.json'), vm_id: created.json.id });
    expect(exec.status, JSON.stringify(exec.json)).toBe(200);
    expect(exec.json).toMatchObject({ vm_id: created.json.id, exit_code: 0, stdout: 'in-given-vm\n', stderr: '', error: null });
    const hist = await call('GET', `/api/vms/${created.json.id}/history?limit=100&failures_only=false`);
    expect(hist.json).toMatchObject({ vm_id: created.json.id, total: 1 });
    expect(hist.json.entries[0]).toMatchObject({
      id: exec.json.execution_id,
      agent_id: 'agent-fixture-2',
      success: true,
      exit_code: 0,
      command: 'echo in-given-vm',
    });
  });

  it('answers VmExecuteResponse for a program that exits non-zero, and reuses the agent VM', async () => {
    const first = await call('POST', '/api/llm/execute', fixture('vm-execute-request.bash.json'));
    expect(first.status, JSON.stringify(first.json)).toBe(200);
    // Every VmExecuteResponse field, with the Rust types: exit_code i32, duration_ms u64, RFC 3339 times, error Option<String>.
    expect(Object.keys(first.json).sort()).toEqual(
      ['completed_at', 'duration_ms', 'error', 'execution_id', 'exit_code', 'started_at', 'stderr', 'stdout', 'vm_id'].sort(),
    );
    expect(first.json).toMatchObject({ exit_code: 3, stdout: 'hello from terraphim\n', stderr: 'to-stderr\n', error: null });
    expect(Number.isInteger(first.json.duration_ms)).toBe(true);
    expect(Date.parse(first.json.completed_at)).toBeGreaterThanOrEqual(Date.parse(first.json.started_at));

    const again = await call('POST', '/api/llm/execute', { ...fixture('vm-execute-request.bash.json'), code: 'echo again' });
    expect(again.json).toMatchObject({ exit_code: 0, stdout: 'again\n', vm_id: first.json.vm_id });
    expect(again.json.execution_id).not.toBe(first.json.execution_id);

    const other = await call('POST', '/api/llm/execute', { ...fixture('vm-execute-request.bash.json'), agent_id: 'someone-else', code: 'true' });
    expect(other.json.vm_id).not.toBe(first.json.vm_id);

    const pool = await call('GET', '/api/llm/vm-pool/agent-fixture-1');
    expect(pool.status).toBe(200);
    expect(pool.json.agent_id).toBe('agent-fixture-1');
    expect(pool.json.available_vms.map((v: { id: string }) => v.id)).toEqual([first.json.vm_id]);
    expect(pool.json.in_use_vms).toEqual([]);
    expect(pool.json.available_vms[0]).toMatchObject({ name: 'agent-agent-fixture-1-vm', status: 'running' });
    expect(pool.json.pool_config).toMatchObject({ enabled: true, auto_provision: true, history: { enabled: true, integration_mode: 'http' } });

    const failures = await call('GET', `/api/vms/${first.json.vm_id}/history?limit=100&failures_only=true`);
    expect(failures.json.total).toBe(1);
    expect(failures.json.entries[0]).toMatchObject({ exit_code: 3, success: false, snapshot_id: null });
  });

  it('gives an agent a new VM after its VM is released (DELETE /v1/vms/{id})', async () => {
    const body = { ...fixture('vm-execute-request.bash.json'), agent_id: 'released-agent', code: 'echo $$' };
    const first = await call('POST', '/api/llm/execute', body);
    expect(first.status).toBe(200);
    const del = await app.inject({ method: 'DELETE', url: `/v1/vms/${first.json.vm_id}`, headers: auth });
    expect(del.statusCode).toBe(204);
    const gone = await call('GET', '/api/llm/vm-pool/released-agent');
    expect(gone.json.available_vms).toEqual([]);
    const second = await call('POST', '/api/llm/execute', body);
    expect(second.status).toBe(200);
    expect(second.json.vm_id).not.toBe(first.json.vm_id);
  });

  it('reports a timeout in exit_code and error', async () => {
    const r = await call('POST', '/api/llm/execute', { ...fixture('vm-execute-request.bash.json'), code: 'echo started; sleep 5', timeout_seconds: 1 });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ exit_code: 124, stdout: 'started\n' });
    expect(r.json.error).toMatch(/timed out after 1000 ms/);
  });

  it('parses code blocks from an LLM answer and runs those above the threshold', async () => {
    const r = await call('POST', '/api/llm/parse-execute', fixture('parse-execute-request.json'));
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.code_blocks.map((b: { language: string }) => b.language)).toEqual(['bash', 'text']);
    const [bash, text] = r.json.code_blocks;
    expect(bash.execution_confidence).toBeGreaterThanOrEqual(0.7);
    expect(text.execution_confidence).toBeLessThan(0.7);
    expect(r.json.execution_results).toHaveLength(1);
    expect(r.json.execution_results[0]).toMatchObject({ exit_code: 0, stdout: 'parsed-and-run\nsecond line\n' });
    expect(r.json.errors).toEqual([]);
  });

  it('refuses an unknown vm_type naming the valid ones', async () => {
    const r = await call('POST', '/api/vms', { ...fixture('provision-vm-request.json'), vm_type: 'jammy-huge' });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('INVALID_ARGUMENT');
    expect(r.json.error.message).toContain('focal-optimized, minimal, sandbox');
  });

  it('checks bodies like serde: required fields, unsupported languages, requirements, timeouts', async () => {
    const { requirements: _omit, ...noRequirements } = fixture('vm-execute-request.bash.json');
    expect((await call('POST', '/api/llm/execute', noRequirements)).status).toBe(400);
    const rust = await call('POST', '/api/llm/execute', { ...fixture('vm-execute-request.bash.json'), language: 'rust' });
    expect(rust.status).toBe(400);
    expect(rust.json.error.message).toContain('supported: python');
    expect((await call('POST', '/api/llm/execute', { ...fixture('vm-execute-request.bash.json'), requirements: ['numpy'] })).status).toBe(400);
    expect((await call('POST', '/api/llm/execute', { ...fixture('vm-execute-request.bash.json'), timeout_seconds: 3600 })).status).toBe(400);
    const missing = await call('POST', '/api/llm/execute', { ...fixture('vm-execute-request.bash.json'), vm_id: 'vm-000000000000' });
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('VM_NOT_FOUND');
  });

  it('answers 501 NOT_IMPLEMENTED for snapshot and rollback without live snapshots', async () => {
    const exec = await call('POST', '/api/llm/execute', { ...fixture('vm-execute-request.bash.json'), code: 'true' });
    const snap = await call('POST', `/api/vms/${exec.json.vm_id}/snapshots`, { name: 'agent-x-1', description: 'Auto-created snapshot for agent x' });
    expect(snap.status).toBe(501);
    expect(snap.json.error.code).toBe('NOT_IMPLEMENTED');
    const rb = await call('POST', `/api/vms/${exec.json.vm_id}/rollback/snap-1`);
    expect(rb.status).toBe(501);
  });

  it('maps the bridge snapshot and rollback calls onto live snapshots, and history entries carry the snapshot id', async () => {
    const calls: string[] = [];
    const withSnapshots = await buildApp({
      ...deps,
      terraphim: {
        ...deps.terraphim,
        snapshots: {
          create: async (vmId: string) => {
            calls.push(`create ${vmId}`);
            return { snapshotId: 'snap-0123456789ab' };
          },
          rollback: async (vmId: string, snapshotId: string) => {
            calls.push(`rollback ${vmId} ${snapshotId}`);
          },
        },
      },
    });
    try {
      const inject = async (method: 'GET' | 'POST', url: string, body?: unknown) => {
        const res = await withSnapshots.inject({ method, url, headers: auth, ...(body === undefined ? {} : { payload: body as object }) });
        return { status: res.statusCode, json: JSON.parse(res.body) };
      };
      const exec = await inject('POST', '/api/llm/execute', { ...fixture('vm-execute-request.bash.json'), agent_id: 'snapper', code: 'exit 1' });
      expect(exec.json.exit_code).toBe(1);
      const vmId = exec.json.vm_id;
      // fcctl_bridge.rs create_snapshot_http: reads snapshot_id (or id).
      const snap = await inject('POST', `/api/vms/${vmId}/snapshots`, {
        name: 'agent-snapper-1700000000',
        description: 'Auto-created snapshot for agent snapper',
      });
      expect(snap.status).toBe(201);
      expect(snap.json.snapshot_id).toBe('snap-0123456789ab');
      const hist = await inject('GET', `/api/vms/${vmId}/history?limit=100&failures_only=true`);
      expect(hist.json.entries.at(-1)).toMatchObject({ id: exec.json.execution_id, snapshot_id: 'snap-0123456789ab' });
      const rb = await inject('POST', `/api/vms/${vmId}/rollback/snap-0123456789ab`);
      expect(rb.status).toBe(200);
      expect(rb.json).toMatchObject({ vm_id: vmId, restored_snapshot_id: 'snap-0123456789ab', success: true });
      expect(calls).toEqual([`create ${vmId}`, `rollback ${vmId} snap-0123456789ab`]);
    } finally {
      await withSnapshots.close();
    }
  });

  it('takes vm_type aliases, default_vm_type and history bounds from the [terraphim] config table', async () => {
    const file = join(workDir, 'tfc.toml');
    writeFileSync(
      file,
      ['[pools.sandbox]', '[terraphim]', 'default_vm_type = "agent-box"', 'history_max_entries = 2', '[terraphim.vm_types]', 'agent-box = "sandbox"', ''].join(
        '\n',
      ),
    );
    const loaded = loadConfig({ configPath: file, env: { HOME: workDir } });
    const db = openDatabase(join(workDir, 'config-history.db'));
    const configured = await buildApp({ ...deps, terraphim: { ...terraphimOptionsFromConfig(loaded.config.terraphim, db), dir: workDir } });
    try {
      const created = await callOn(configured, 'POST', '/api/vms', { ...fixture('provision-vm-request.json'), vm_type: 'agent-box' });
      expect(created.status, JSON.stringify(created.json)).toBe(201);
      expect(created.json).toMatchObject({ vm_type: 'agent-box', status: 'running' });
      expect(pools.poolOf(created.json.id)?.name).toBe('sandbox');

      const body = { ...fixture('vm-execute-request.bash.json'), agent_id: 'configured-agent' };
      const runs = [];
      for (const n of [1, 2, 3]) runs.push(await callOn(configured, 'POST', '/api/llm/execute', { ...body, code: `echo run-${n}` }));
      expect(runs.map((r) => r.json.stdout)).toEqual(['run-1\n', 'run-2\n', 'run-3\n']);
      const vmId = runs[0]!.json.vm_id;
      expect(pools.poolOf(vmId)?.name).toBe('sandbox');
      const hist = await callOn(configured, 'GET', `/api/vms/${vmId}/history`);
      expect(hist.json.total).toBe(2);
      expect(hist.json.entries.map((e: { command: string }) => e.command)).toEqual(['echo run-2', 'echo run-3']);

      const pool = await callOn(configured, 'GET', '/api/llm/vm-pool/configured-agent');
      expect(pool.json.pool_config).toMatchObject({ default_vm_type: 'agent-box', history: { max_history_entries: 2, persist_history: true } });
      // The pool holds 8 VMs: give these back for the tests below.
      await release(created.json.id);
      await release(vmId);
    } finally {
      await configured.close();
      db.close();
    }
  });

  it('keeps the history in the database: a new app over the same file sees it; it goes when its VM is destroyed', async () => {
    const path = join(workDir, 'history.db');
    const withStore = (db: ReturnType<typeof openDatabase>) =>
      buildApp({ ...deps, terraphim: { ...deps.terraphim, history: new TerraphimHistoryRepository(db, DEFAULT_HISTORY_BOUNDS) } });
    let db = openDatabase(path);
    const first = await withStore(db);
    const exec = await callOn(first, 'POST', '/api/llm/execute', {
      ...fixture('vm-execute-request.bash.json'),
      agent_id: 'persistent-agent',
      code: 'echo kept',
    });
    expect(exec.status, JSON.stringify(exec.json)).toBe(200);
    const vmId = exec.json.vm_id;
    expect((await callOn(first, 'GET', '/api/llm/vm-pool/persistent-agent')).json.pool_config.history.persist_history).toBe(true);
    await first.close();
    db.close();

    db = openDatabase(path);
    const second = await withStore(db);
    try {
      const hist = await callOn(second, 'GET', `/api/vms/${vmId}/history?limit=100&failures_only=false`);
      expect(hist.json).toMatchObject({ vm_id: vmId, total: 1 });
      expect(hist.json.entries[0]).toMatchObject({
        id: exec.json.execution_id,
        agent_id: 'persistent-agent',
        command: 'echo kept',
        stdout: 'kept\n',
        success: true,
      });

      expect((await callOn(second, 'DELETE', `/v1/vms/${vmId}`)).status).toBe(204);
      const deadline = Date.now() + 5000;
      let total = -1;
      while (Date.now() < deadline && total !== 0) {
        total = (await callOn(second, 'GET', `/api/vms/${vmId}/history`)).json.total;
        if (total !== 0) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(total).toBe(0);
    } finally {
      await second.close();
      db.close();
    }
  });

  it('keeps the history of a VM paused to disk, and drops rows of VMs that went while no app listened', async () => {
    const db = openDatabase(join(workDir, 'prune.db'));
    const history = new TerraphimHistoryRepository(db, DEFAULT_HISTORY_BOUNDS);
    const pausedToDisk = new Set<string>();
    // Only what the history asks of live snapshots: is this VM paused to disk?
    const liveSnapshots = { persisted: (id: string) => (pausedToDisk.has(id) ? { id: 'snap-000000000000' } : null) } as unknown as ApiDeps['liveSnapshots'];
    const withHistory = () => buildApp({ ...deps, liveSnapshots, terraphim: { ...deps.terraphim, history } });
    const first = await withHistory();
    const run = async (agent: string): Promise<string> => {
      const r = await callOn(first, 'POST', '/api/llm/execute', { ...fixture('vm-execute-request.bash.json'), agent_id: agent, code: 'true' });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      return r.json.vm_id;
    };
    const toDisk = await run('to-disk-agent');
    const gone = await run('gone-agent');
    pausedToDisk.add(toDisk);
    await release(toDisk);
    await release(gone);
    const later = await run('later-agent');
    expect(history.vmIds().sort()).toEqual([toDisk, later].sort());
    await first.close();

    // Destroyed while no app listened (a daemon that stopped or crashed): the next app drops its rows.
    await release(later);
    const second = await withHistory();
    try {
      expect(history.vmIds()).toEqual([toDisk]);
      expect((await callOn(second, 'GET', `/api/vms/${toDisk}/history`)).json.total).toBe(1);
    } finally {
      await second.close();
      db.close();
    }
  });
});
