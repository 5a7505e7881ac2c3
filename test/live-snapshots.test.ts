import { existsSync, readdirSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../src/config/index.js';
import { startDaemon, type Daemon } from '../src/daemon/index.js';
import { runCli } from '../src/testing/run-cli.js';
import { dataLayout, LiveSnapshotRepository, openDatabase, VmRepository, type Db } from '../src/store/index.js';
import { VmService, type Vm } from '../src/vm/index.js';
import { SnapshotManager } from '../src/snapshot/index.js';
import { LiveSnapshotService, liveSnapshotsDir } from '../src/snapshot/live/index.js';
import { createDrivers } from '../src/vmm/index.js';
import { assertNothingLeft, jsonApi, qemuProcessesUsing, scratchDir, testDataDir, until, writeConfig } from './helpers.js';
import { openNetworkedService, type NetworkedService } from './net/networked-service.js';
import type { VmProfile } from '../src/vm/index.js';
import { httpGet, Topology } from './net/topology.js';

// Snapshots of running VMs, real QEMU (TCG), in-process: rollback of a
// golden clone, fork of a VM holding state in memory, quotas, cleanup.
describe('snapshots of running VMs (real QEMU)', () => {
  let db: Db;
  let service: VmService;
  let golden: SnapshotManager;
  let live: LiveSnapshotService;
  let vm: Vm;
  const dataDir = testDataDir();
  const text = async (v: Vm, argv: string[]) => {
    const r = await v.exec({ argv, timeoutMs: 20_000 });
    return r.stdout.toString().trim();
  };

  beforeAll(async () => {
    const { config } = loadConfig({ env: { TFC_DATA_DIR: dataDir }, cwd: dataDir });
    const layout = dataLayout(dataDir);
    db = openDatabase(layout.database);
    service = new VmService({ layout, repo: new VmRepository(db), drivers: createDrivers(config), stopTimeoutMs: 3000 });
    golden = new SnapshotManager(layout, service);
    live = new LiveSnapshotService({
      layout,
      repo: new LiveSnapshotRepository(db),
      service,
      profiles: (name) => config.profiles[name],
      quota: { perVm: 3, totalBytes: 16 * 1024 ** 3 },
    });
    vm = await golden.clone(config.profiles.minimal);
  }, 300_000);

  afterAll(async () => {
    await service?.stopAll('test finished');
    db?.close();
    await assertNothingLeft(dataDir);
    const left = existsSync(liveSnapshotsDir(dataLayout(dataDir))) ? readdirSync(liveSnapshotsDir(dataLayout(dataDir))) : [];
    expect(left, 'unnamed snapshots are removed with their VM').toEqual([]);
  });

  it('rolls a VM back: a file deleted after the snapshot is back, one written after it is gone, same VM id', async () => {
    await vm.writeFile('/root/keep.txt', 'before the snapshot\n');
    const snap = await live.snapshot(vm);
    expect(snap.id).toMatch(/^snap-[0-9a-f]{12}$/);
    expect(snap.pauseMs).toBeGreaterThan(0);
    expect(snap.sizeBytes).toBeGreaterThan(100_000);
    console.log(`live snapshot of a ${snap.meta.memoryMib} MiB clone: pause ${snap.pauseMs} ms, ${snap.sizeBytes} bytes`);
    // The VM runs on after the snapshot.
    expect(await text(vm, ['cat', '/root/keep.txt'])).toBe('before the snapshot');
    await vm.remove('/root/keep.txt');
    await vm.writeFile('/root/after.txt', 'after\n');
    const pidBefore = vm.pid;

    const { rollbackMs } = await live.rollback(vm, snap.id);
    console.log(`rollback: ${Math.round(rollbackMs)} ms`);
    expect(vm.state).toBe('running');
    expect(vm.pid).not.toBe(pidBefore);
    expect(service.get(vm.id)).toBe(vm);
    expect(await text(vm, ['cat', '/root/keep.txt'])).toBe('before the snapshot');
    expect(await text(vm, ['sh', '-c', 'test -e /root/after.txt && echo present || echo gone'])).toBe('gone');
    // The clock was refreshed: the guest's time is now, not the snapshot's.
    const guestSeconds = Number(await text(vm, ['date', '+%s']));
    expect(Math.abs(guestSeconds - Date.now() / 1000)).toBeLessThan(10);
  }, 180_000);

  it('forks a VM with a counting process into 3 that count on independently, with different random bytes', async () => {
    const { pid } = await vm.agent.spawn({ argv: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/c; sleep 0.1; done'] });
    expect(pid).toBeGreaterThan(0);
    await delay(2000);
    const atSnapshot = Number(await text(vm, ['cat', '/tmp/c']));
    expect(atSnapshot).toBeGreaterThan(0);
    const snap = await live.snapshot(vm, { name: `fork-test-${process.pid}` });
    const forks = await live.fork(snap.id, 3);
    try {
      expect(new Set(forks.map((f) => f.id)).size).toBe(3);
      for (const f of forks) {
        expect(f.id).not.toBe(vm.id);
        expect(f.state).toBe('running');
      }
      const first = await Promise.all(forks.map(async (f) => Number(await text(f, ['cat', '/tmp/c']))));
      // Each continues from the snapshot's value, not from zero.
      for (const n of first) expect(n).toBeGreaterThanOrEqual(atSnapshot);
      // Independent: stop the counter in one fork; the others keep counting.
      await forks[0]!.exec({ argv: ['sh', '-c', `kill ${pid}`] });
      const stopped = Number(await text(forks[0]!, ['cat', '/tmp/c']));
      await delay(2000);
      const later = await Promise.all(forks.map(async (f) => Number(await text(f, ['cat', '/tmp/c']))));
      expect(later[0]).toBe(stopped);
      expect(later[1]).toBeGreaterThan(first[1]!);
      expect(later[2]).toBeGreaterThan(first[2]!);
      // The original keeps counting too.
      expect(Number(await text(vm, ['cat', '/tmp/c']))).toBeGreaterThan(atSnapshot);
      const random = await Promise.all(forks.map((f) => text(f, ['sh', '-c', 'head -c 16 /dev/urandom | od -An -tx1 | tr -d " \\n"'])));
      expect(new Set(random).size).toBe(3);
    } finally {
      await Promise.all(forks.map((f) => service.destroy(f, 'test finished')));
    }
    // A named snapshot outlives its VM until deleted.
    live.delete(snap.id);
    expect(() => live.get(snap.id)).toThrow(/no snapshot/);
  }, 300_000);

  it('a cold-booted VM (no RAM file) with a scratch disk: rollback and fork restore the disk as it was at the snapshot', async () => {
    const { config } = loadConfig({ env: { TFC_DATA_DIR: dataDir }, cwd: dataDir });
    const cold = await service.create({ profile: { ...config.profiles.minimal, diskMib: 16 } });
    try {
      expect(cold.hasMemoryBackend).toBe(false);
      await text(cold, ['sh', '-c', 'echo on-disk > /scratch/a && sync']);
      const snap = await live.snapshot(cold);
      expect(snap.files.scratch).toBeDefined();
      console.log(`live snapshot of a ${snap.meta.memoryMib} MiB cold-booted VM with a 16 MiB scratch disk: pause ${snap.pauseMs} ms, ${snap.sizeBytes} bytes`);
      await text(cold, ['sh', '-c', 'rm /scratch/a && echo later > /scratch/b && sync']);
      await live.rollback(cold, snap.id);
      expect(await text(cold, ['sh', '-c', 'cat /scratch/a; ls /scratch'])).toBe('on-disk\na\nlost+found');
      // Writes after the rollback reach the restored disk.
      expect(await text(cold, ['sh', '-c', 'echo again > /scratch/c && sync && cat /scratch/c'])).toBe('again');
      const started = performance.now();
      const [fork] = await live.fork(snap.id, 1);
      console.log(`fork of one VM: ${Math.round(performance.now() - started)} ms`);
      try {
        expect(await text(fork!, ['sh', '-c', 'cat /scratch/a; ls /scratch'])).toBe('on-disk\na\nlost+found');
      } finally {
        await service.destroy(fork!, 'test finished');
      }
    } finally {
      await service.destroy(cold, 'test finished');
    }
    expect(live.list({ vmId: cold.id })).toEqual([]);
  }, 300_000);

  it('enforces the per-VM quota with SNAPSHOT_QUOTA_EXCEEDED', async () => {
    const have = live.list({ vmId: vm.id }).length;
    for (let i = have; i < 3; i++) await live.snapshot(vm);
    await expect(live.snapshot(vm)).rejects.toMatchObject({ code: 'SNAPSHOT_QUOTA_EXCEEDED', details: { quota: 'per_vm', limit: 3 } });
    expect(live.list({ vmId: vm.id })).toHaveLength(3);
  }, 180_000);
});

// The same through the daemon: REST routes and the CLI commands (in-process), forks owned by the API.
describe('snapshots of running VMs through the REST API and the CLI', () => {
  const dir = scratchDir();
  const token = 'test-token-live-snapshots-0123';
  const auth = { authorization: `Bearer ${token}` };
  let daemon: Daemon | undefined;
  let vmId = '';
  let loadedConfig: ReturnType<typeof loadConfig>['config'];
  const api = jsonApi(() => daemon!.url, auth);
  const start = () => startDaemon(loadedConfig, { listen: '127.0.0.1:0', env: { TFC_TOKEN: token }, logger: pino({ level: 'silent' }) });
  const sh = async (id: string, script: string) => {
    const r = await api('POST', `/v1/vms/${id}/exec`, { cmd: ['sh', '-c', script] });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    return String(r.json.stdout).trim();
  };

  beforeAll(async () => {
    const config = writeConfig(dir.path, '[pools.default]\nmin = 1\nmax = 1\ntarget = 1\nallocate_timeout_ms = 120000\n');
    loadedConfig = loadConfig({ configPath: config, env: { TFC_DATA_DIR: testDataDir() } }).config;
    daemon = await start();
    vi.stubEnv('TFC_DATA_DIR', testDataDir());
    vi.stubEnv('TFC_CONFIG', config);
    vi.stubEnv('TFC_URL', daemon.url);
    vi.stubEnv('TFC_TOKEN', token);
    await until('pool ready', async () => (await api('GET', '/v1/pools/default')).json.ready >= 1, 300_000);
    const alloc = await api('POST', '/v1/pools/default/allocate', {});
    expect(alloc.status, JSON.stringify(alloc.json)).toBe(201);
    vmId = alloc.json.vm.id;
  }, 400_000);

  afterAll(async () => {
    vi.unstubAllEnvs();
    await daemon?.close();
    dir.remove();
    await assertNothingLeft(testDataDir());
  });

  it('snapshots (REST and CLI), lists, rolls back, forks, deletes; forks go with DELETE /v1/vms/{id}', async () => {
    await sh(vmId, 'echo one > /root/state.txt');
    const made = await api('POST', `/v1/vms/${vmId}/snapshots`, {});
    expect(made.status, JSON.stringify(made.json)).toBe(201);
    expect(made.json).toMatchObject({ snapshot_id: expect.stringMatching(/^snap-/), pause_ms: expect.any(Number), size_bytes: expect.any(Number) });
    const snapId = made.json.snapshot_id as string;

    await sh(vmId, 'echo two > /root/state.txt; touch /root/later');
    const cli = await runCli(['vm', 'snapshot', vmId, '--name', `cli-${process.pid}`, '--json']);
    expect(cli.code, cli.stderr).toBe(0);
    const named = JSON.parse(cli.stdout) as { snapshot_id: string };

    const listed = await runCli(['vm', 'snapshots', '--vm', vmId, '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { snapshots: Array<{ id: string }> }).snapshots.map((x) => x.id)).toEqual([named.snapshot_id, snapId]);
    expect((await api('GET', `/v1/snapshots/${snapId}`)).json).toMatchObject({ id: snapId, vm_id: vmId, name: null });

    const back = await api('POST', `/v1/vms/${vmId}/rollback`, { snapshot_id: snapId });
    expect(back.status, JSON.stringify(back.json)).toBe(200);
    expect(back.json).toMatchObject({ id: vmId, state: 'running', allocated: true });
    expect(await sh(vmId, 'cat /root/state.txt; test -e /root/later && echo later || echo no-later')).toBe('one\nno-later');

    // Roll forward to the named snapshot through the CLI.
    const fwd = await runCli(['vm', 'rollback', vmId, named.snapshot_id]);
    expect(fwd.code, fwd.stderr).toBe(0);
    expect(await sh(vmId, 'cat /root/state.txt')).toBe('two');

    const forkedAt = Date.now();
    const forked = await runCli(['vm', 'fork', snapId, '--count', '2', '--ttl-ms', '3600000']);
    expect(forked.code, forked.stderr).toBe(0);
    const forkIds = forked.stdout.trim().split('\n');
    expect(forkIds).toHaveLength(2);
    const vmViews = (await api('GET', '/v1/vms')).json.vms as { id: string; expires_at: string | null }[];
    for (const id of forkIds) {
      const view = vmViews.find((v) => v.id === id);
      expect(view, `fork ${id} listed`).toBeDefined();
      // Forks run under a lease of their own (--ttl-ms), which keepalive extends.
      expect(Date.parse(view!.expires_at!)).toBeGreaterThanOrEqual(forkedAt + 3_590_000);
      expect(await sh(id, 'cat /root/state.txt')).toBe('one');
      expect((await api('DELETE', `/v1/vms/${id}`)).status).toBe(204);
    }

    // Errors: bad count, unknown snapshot, a snapshot of another VM.
    expect((await api('POST', `/v1/snapshots/${snapId}/fork`, { count: 17 })).status).toBe(400);
    const badTtl = await runCli(['vm', 'fork', snapId, '--count', '1', '--ttl-ms', '0']);
    expect(badTtl.code).not.toBe(0);
    expect(badTtl.stderr).toMatch(/--ttl-ms must be an integer from 1 to 86400000/);
    const missing = await api('GET', '/v1/snapshots/snap-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('SNAPSHOT_NOT_FOUND');

    // Release the VM: its unnamed snapshot goes with it, the named one stays until deleted.
    expect((await api('DELETE', `/v1/vms/${vmId}`)).status).toBe(204);
    await until('unnamed snapshot removed with its VM', async () => (await api('GET', `/v1/snapshots/${snapId}`)).status === 404, 30_000);
    expect((await api('GET', `/v1/snapshots/${named.snapshot_id}`)).status).toBe(200);
    const rm = await runCli(['vm', 'snapshot-rm', named.snapshot_id]);
    expect(rm.code, rm.stderr).toBe(0);
    expect((await api('GET', `/v1/snapshots/${named.snapshot_id}`)).status).toBe(404);
  }, 300_000);

  it('pauses a VM to disk, survives a daemon restart, and resumes it with its process still running', async () => {
    await until('pool ready again', async () => (await api('GET', '/v1/pools/default')).json.ready >= 1, 120_000);
    const alloc = await api('POST', '/v1/pools/default/allocate', {});
    expect(alloc.status, JSON.stringify(alloc.json)).toBe(201);
    const id = alloc.json.vm.id as string;
    const spawned = await api('POST', `/v1/vms/${id}/processes`, {
      cmd: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/c; sleep 0.1; done'],
    });
    expect(spawned.status, JSON.stringify(spawned.json)).toBe(201);
    await delay(1500);
    const before = Number(await sh(id, 'cat /tmp/c'));
    expect(before).toBeGreaterThan(0);

    // Through the CLI: tfc vm pause --persist (REST: POST /v1/vms/{id}/pause {persist: true}).
    const cli = await runCli(['vm', 'pause', id, '--persist', '--json']);
    expect(cli.code, cli.stderr).toBe(0);
    const paused = JSON.parse(cli.stdout) as { id: string; state: string; snapshot: { vm_id: string; pause_ms: number; size_bytes: number } };
    expect(paused).toMatchObject({ id, state: 'paused_to_disk', snapshot: { vm_id: id } });
    console.log(`pause to disk: paused ${paused.snapshot.pause_ms} ms, ${paused.snapshot.size_bytes} bytes`);
    expect((await api('POST', `/v1/vms/${id}/pause`, { persist: 'yes' })).status).toBe(400);
    expect((await api('GET', `/v1/vms/${id}`)).json.state).toBe('stopped');
    expect(await qemuProcessesUsing(`tfc-${id} `)).toEqual([]);

    await daemon!.close();
    daemon = await start();
    vi.stubEnv('TFC_URL', daemon.url);
    const started = performance.now();
    const resumed = await api('POST', `/v1/vms/${id}/resume`, {});
    expect(resumed.status, JSON.stringify(resumed.json)).toBe(200);
    console.log(`resume from disk after a daemon restart: ${Math.round(performance.now() - started)} ms`);
    expect(resumed.json).toMatchObject({ id, state: 'running' });
    const after = Number(await sh(id, 'cat /tmp/c'));
    expect(after).toBeGreaterThanOrEqual(before);
    await delay(1000);
    expect(Number(await sh(id, 'cat /tmp/c'))).toBeGreaterThan(after);
    // The pause-to-disk snapshot is used up; the VM is the API's now.
    expect((await api('GET', `/v1/snapshots?vm_id=${id}`)).json.snapshots).toEqual([]);
    expect((await api('DELETE', `/v1/vms/${id}`)).status).toBe(204);
  }, 400_000);
});

const isRoot = process.getuid?.() === 0;

// A networked VM keeps its address across a rollback and a pause to disk; a fork gets its own.
describe.skipIf(!isRoot)('snapshots of a networked VM (real QEMU, TAP, namespaces)', () => {
  const topo = new Topology();
  let net: NetworkedService | undefined;
  let service: VmService;
  let live: LiveSnapshotService;
  let profile: VmProfile;

  beforeAll(async () => {
    net = await openNetworkedService(topo, testDataDir());
    const { config, layout, db } = net;
    service = net.service;
    profile = { ...config.profiles.minimal, name: 'live-net-test', network: { ...config.profiles.minimal.network, enabled: true } };
    live = new LiveSnapshotService({
      layout,
      repo: new LiveSnapshotRepository(db),
      service,
      profiles: (name) => (name === profile.name ? profile : undefined),
    });
  }, 120_000);

  afterAll(async () => {
    await (net ? net.close() : topo.destroy());
    expect(await topo.namespaces()).toEqual([]);
    await assertNothingLeft(testDataDir());
  });

  it('rolls back with the same address (a server started before the snapshot answers again); a fork serves at its own address', async () => {
    const vm = await service.create({ profile });
    const address = vm.network!.hostAddress;
    await vm.writeFile('/www/index.html', 'before\n', { mkdirs: true });
    expect((await vm.exec({ argv: ['httpd', '-p', '9000', '-h', '/www'] })).exitCode).toBe(0);
    expect((await httpGet(topo.hostNs, address, 9000)).body).toBe('before');
    const snap = await live.snapshot(vm);

    await vm.exec({ argv: ['sh', '-c', 'killall httpd; echo after > /www/index.html'] });
    expect((await httpGet(topo.hostNs, address, 9000, 1500)).ok).toBe(false);
    await live.rollback(vm, snap.id);
    expect(vm.network!.hostAddress).toBe(address);
    expect((await httpGet(topo.hostNs, address, 9000)).body).toBe('before');

    const [fork] = await live.fork(snap.id, 1);
    expect(fork!.network!.hostAddress).not.toBe(address);
    const forkAddress = fork!.network!.hostAddress;
    expect((await httpGet(topo.hostNs, forkAddress, 9000)).body).toBe('before');

    // Paused to disk, then resumed after a lower subnet came free: it takes its own address again.
    await live.persist(fork!);
    await service.destroy(fork!, 'paused to disk');
    await service.destroy(vm, 'test finished');
    const back = await live.revive(fork!.id);
    expect(back.id).toBe(fork!.id);
    expect(back.network!.hostAddress).toBe(forkAddress);
    expect((await httpGet(topo.hostNs, forkAddress, 9000)).body).toBe('before');
    await service.destroy(back, 'test finished');
  }, 300_000);
});
