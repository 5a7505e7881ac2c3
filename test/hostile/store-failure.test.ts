import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/index.js';
import { TfcError } from '../../src/errors/index.js';
import { runCommand } from '../../src/process/index.js';
import { SnapshotManager } from '../../src/snapshot/index.js';
import { dataLayout, openDatabase, VmRepository, type DataLayout, type Db } from '../../src/store/index.js';
import { VmService, type Vm } from '../../src/vm/index.js';
import { createDrivers } from '../../src/vmm/index.js';
import { NetworkManager } from '../../src/net/index.js';
import { LeaseRepository } from '../../src/store/lease-repository.js';
import { qemuProcessesUsing, scratchDir, testDataDir } from '../helpers.js';
import { Topology } from '../net/topology.js';

type Op = 'insert' | 'update' | 'transition' | 'recordPhases';

/**
 * The real repository on a real SQLite file; `failAt` runs an injection
 * (make the database read-only, fill its disk) right before the chosen
 * write, which then fails inside SQLite itself.
 */
class InjectingRepo extends VmRepository {
  failAt?: { op: Op; to?: string; inject: () => void };
  private trigger(op: Op, to?: string): void {
    const f = this.failAt;
    if (f && f.op === op && (f.to === undefined || f.to === to)) {
      this.failAt = undefined;
      f.inject();
    }
  }
  override insert(...args: Parameters<VmRepository['insert']>): void {
    this.trigger('insert');
    super.insert(...args);
  }
  override update(...args: Parameters<VmRepository['update']>): void {
    this.trigger('update');
    super.update(...args);
  }
  override transition(id: string, from: string, to: string, reason?: string): void {
    this.trigger('transition', to);
    super.transition(id, from, to, reason);
  }
  override recordPhases(...args: Parameters<VmRepository['recordPhases']>): void {
    this.trigger('recordPhases');
    super.recordPhases(...args);
  }
}

const isRoot = process.getuid?.() === 0;

// SQLite failure injection with real VMs: a read-only database and a full
// disk (the database on a 1 MiB tmpfs) during create, restore and destroy.
// Whatever fails, no QEMU process, socket or run dir may outlive it, and the
// error names the operation, the database file and the fix.
describe.skipIf(!isRoot)('store failures during create, restore and destroy leak nothing (real VMs; needs root for the tmpfs)', () => {
  const scratch = scratchDir('tfc-storefail-');
  const storeDir = join(scratch.path, 'store');
  let mounted = false;
  let config: Config;
  let layout: DataLayout;
  let db: Db;
  let repo: InjectingRepo;
  let service: VmService;
  let snapshots: SnapshotManager;
  let filler: string | undefined;
  const topo = new Topology();
  let leases: LeaseRepository;
  let networks: NetworkManager;

  const readOnly = () => db.pragma('query_only = ON');
  const fillDisk = () => {
    filler = join(storeDir, 'filler');
    const fd = openSync(filler, 'w');
    const chunk = Buffer.alloc(64 * 1024, 1);
    try {
      for (const size of [chunk.length, 4096, 256, 1]) {
        try {
          for (let i = 0; i < 100_000; i++) writeSync(fd, chunk, 0, size);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        }
      }
    } finally {
      closeSync(fd);
    }
  };

  /** What must be true after any failure: no QEMU of ours, no run dir, nothing owned. */
  async function assertNothingLeaked(): Promise<void> {
    expect(await qemuProcessesUsing(scratch.path)).toEqual([]);
    expect(existsSync(layout.runVms) ? readdirSync(layout.runVms) : []).toEqual([]);
    expect(service.list()).toEqual([]);
  }

  async function storeError(p: Promise<unknown>): Promise<TfcError> {
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TfcError);
    expect((err as TfcError).code).toBe('STORE_ERROR');
    expect((err as TfcError).message).toContain(layout.database);
    return err as TfcError;
  }

  beforeAll(async () => {
    mkdirSync(storeDir, { recursive: true });
    await runCommand('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tfc-store-test', storeDir]);
    mounted = true;
    const dataDir = testDataDir();
    config = loadConfig({ env: { TFC_DATA_DIR: dataDir }, cwd: dataDir }).config;
    // Images and golden snapshots come from the shared test data dir; the
    // database lives on the tmpfs; run dirs and logs are ours alone, so the
    // leak check cannot be confused by other users of the machine.
    layout = { ...dataLayout(dataDir), database: join(storeDir, 'tfc.db'), runVms: join(scratch.path, 'run', 'vms'), logs: join(scratch.path, 'logs') };
    db = openDatabase(layout.database);
    repo = new InjectingRepo(db);
    await topo.create();
    leases = new LeaseRepository(db);
    networks = new NetworkManager({ hostNetns: topo.hostNs, leases, netnsPrefix: topo.vmNetnsPrefix, exposedPorts: [] });
    await networks.ensureHost();
    service = new VmService({ layout, repo, drivers: createDrivers(config), stopTimeoutMs: 3000, networks });
    snapshots = new SnapshotManager(layout, service);
    await snapshots.ensure(config.profiles.minimal);
  });

  afterEach(async () => {
    repo.failAt = undefined;
    if (filler) rmSync(filler, { force: true });
    filler = undefined;
    db?.pragma('query_only = OFF');
    await service?.stopAll('test finished');
  });

  afterAll(async () => {
    await service?.stopAll('test finished');
    await networks?.removeHost().catch(() => undefined);
    await topo.destroy();
    db?.close();
    if (mounted) await runCommand('umount', [storeDir]);
    scratch.remove();
  });

  it('read-only database before a cold boot: STORE_ERROR naming the write and the fix, nothing started', async () => {
    readOnly();
    const err = await storeError(service.create({ profile: config.profiles.minimal }));
    expect(err.message).toMatch(/could not record the creation of VM vm-[0-9a-f]{12}/);
    expect(err.message).toMatch(/read-only: make data_dir .* writable/);
    await assertNothingLeaked();
  });

  it('database turns read-only mid-boot (recording the VMM pid): the VMM it just spawned is stopped', async () => {
    repo.failAt = { op: 'update', inject: readOnly };
    const err = await storeError(service.create({ profile: config.profiles.minimal }));
    expect(err.message).toMatch(/record the VMM process of VM/);
    await assertNothingLeaked();
  });

  it('disk fills when a restored clone is recorded running: the clone is stopped, nothing leaks', async () => {
    repo.failAt = { op: 'transition', to: 'running', inject: fillDisk };
    const err = await storeError(snapshots.clone(config.profiles.minimal));
    expect(err.message).toMatch(/going from booting to running/);
    expect(err.message).toContain(`disk full: free space in data_dir (${storeDir})`);
    await assertNothingLeaked();
  });

  it('full disk before a restore: STORE_ERROR "disk full", nothing started', async () => {
    fillDisk();
    const err = await storeError(snapshots.clone(config.profiles.minimal));
    expect(err.message).toContain('disk full: free space in data_dir');
    await assertNothingLeaked();
  });

  for (const [name, inject] of [
    ['full disk', () => fillDisk()],
    ['read-only database', () => readOnly()],
  ] as const) {
    it(`${name} during destroy: the VMM is stopped and its run dir removed anyway, then STORE_ERROR`, async () => {
      const vm: Vm = await snapshots.clone(config.profiles.minimal);
      const pid = vm.pid!;
      expect(vm.state).toBe('running');
      // The leak check can see our VMs (it would catch a surviving one).
      expect(await qemuProcessesUsing(scratch.path)).toContain(pid);
      inject();
      const err = await storeError(service.destroy(vm, 'test destroy'));
      expect(err.message).toMatch(
        new RegExp(`^VM ${vm.id} was stopped and released everything it held, but could not record VM ${vm.id} going from running to stopping`),
      );
      expect(err.message).toMatch(name === 'full disk' ? /disk full/ : /read-only/);
      expect(vm.state).toBe('stopped');
      expect(() => process.kill(pid, 0)).toThrow();
      await assertNothingLeaked();
    });
  }

  it('networked VM, disk fills when it is recorded running: namespace, TAP, veth gone; the lease is written free once space returns', async () => {
    const profile = { ...config.profiles.minimal, name: 'storefail-net', network: { ...config.profiles.minimal.network, enabled: true } };
    repo.failAt = { op: 'transition', to: 'running', inject: fillDisk };
    const err = await storeError(service.create({ profile }));
    expect(err.message).toContain('disk full');
    await assertNothingLeaked();
    expect(await topo.namespaces(topo.vmNetnsPrefix)).toEqual([]);
    expect((await topo.hostLinks()).filter((l) => l !== 'lo' && l !== 'up0')).toEqual([]);
    // The lease could not be deleted on a full disk; it is not lost, only pending.
    expect(leases.pendingReleases).toHaveLength(1);
    rmSync(filler!, { force: true });
    filler = undefined;
    // The next networked VM writes the pending release and gets the first subnet again.
    const vm = await service.create({ profile });
    expect(leases.pendingReleases).toEqual([]);
    expect(leases.list().map((l) => l.vmId)).toEqual([vm.id]);
    const first = leases.get(vm.id)!.hostAddress;
    await service.destroy(vm);
    expect(leases.list()).toEqual([]);
    expect(first).toMatch(/\.2$/);
    await assertNothingLeaked();
    expect(await topo.namespaces(topo.vmNetnsPrefix)).toEqual([]);
  });
});
