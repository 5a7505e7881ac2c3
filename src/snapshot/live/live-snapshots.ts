import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, InvalidStateError, SnapshotNotFoundError, VmNotFoundError } from '../../errors/index.js';
import type { BuiltImage } from '../../guest/image-store.js';
import type { DataLayout, LiveSnapshotFileSet, LiveSnapshotRecord, LiveSnapshotRepository } from '../../store/index.js';
import type { DriverName, SnapshotFiles } from '../../vmm/driver.js';
import type { Vm } from '../../vm/vm.js';
import type { VmProfile, VmService } from '../../vm/vm-service.js';
import { SCRATCH_DISK_FILE } from '../../vm/disks.js';
import { ensurePrivateDir } from '../../security/index.js';
import { DetachedLeases } from './detached-leases.js';
import { ForkBases, forkBaseFiles } from './fork-base.js';
import { checkQuota, DEFAULT_LIVE_SNAPSHOT_QUOTA, type LiveSnapshotQuota } from './quota.js';

import { MAX_FORK_COUNT, MAX_SNAPSHOT_NAME_LENGTH, SNAPSHOT_ID_RE as ID_RE, SNAPSHOT_NAME_RE as NAME_RE } from './limits.js';

export { MAX_FORK_COUNT, MAX_SNAPSHOT_NAME_LENGTH };

export interface LiveSnapshotServiceOptions {
  layout: DataLayout;
  repo: LiveSnapshotRepository;
  service: VmService;
  /** The config profile called `name` (forks are made with its network, disk and boot timeout); undefined when gone. */
  profiles: (name: string) => VmProfile | undefined;
  quota?: LiveSnapshotQuota;
}

/** Data dir folder of snapshots of running VMs: one directory per snapshot id. */
export function liveSnapshotsDir(layout: DataLayout): string {
  return join(layout.root, 'live-snapshots');
}

/**
 * Snapshots of running VMs (issue 10): take one (the VM pauses for the
 * copy, then runs on), roll a VM back to one of its own, fork one into new
 * VMs. Files live in data_dir/live-snapshots/ID, rows in SQLite; unnamed
 * snapshots go when their VM is destroyed.
 */
export class LiveSnapshotService {
  private readonly quota: LiveSnapshotQuota;
  /** VMs with a snapshot being written: a second one waits its turn through the quota check, not in parallel. */
  private readonly busy = new Set<string>();

  /** Leases of forks and of VMs resumed from disk (they belong to no pool). */
  readonly leases: DetachedLeases;

  /** Copy-on-write bases of forks, made once per snapshot on its first fork. */
  private get forkBases(): ForkBases {
    this.forkBaseMaker ??= new ForkBases({ repo: this.options.repo, driver: (name) => this.options.service.driver(name), quota: this.quota });
    return this.forkBaseMaker;
  }
  private forkBaseMaker?: ForkBases;

  constructor(private readonly options: LiveSnapshotServiceOptions) {
    this.quota = options.quota ?? DEFAULT_LIVE_SNAPSHOT_QUOTA;
    this.leases = new DetachedLeases((vmId) => {
      const vm = options.service.get(vmId);
      if (vm) void options.service.destroy(vm, 'lease expired').catch(() => undefined);
    });
    options.service.onDestroyed((vmId) => {
      this.leases.end(vmId);
      this.removeUnnamed(vmId);
    });
  }

  /**
   * Snapshot of running `vm`. Throws InvalidArgumentError (bad or taken
   * name), SnapshotQuotaExceededError, InvalidStateError (not running),
   * SnapshotUnsupportedError (driver), QmpError; nothing is left behind on failure.
   */
  async snapshot(vm: Vm, request: { name?: string; persisted?: boolean } = {}): Promise<LiveSnapshotRecord> {
    const name = request.name ?? null;
    if (name !== null && (name.length > MAX_SNAPSHOT_NAME_LENGTH || !NAME_RE.test(name))) {
      throw new InvalidArgumentError(`snapshot name must be 1-${MAX_SNAPSHOT_NAME_LENGTH} characters of A-Z a-z 0-9 . _ - (starting with a letter or digit)`);
    }
    if (name !== null && this.options.repo.getByName(name)) throw new InvalidArgumentError(`a snapshot named "${name}" exists already`);
    if (this.busy.has(vm.id)) throw new InvalidStateError(`a snapshot of VM ${vm.id} is being written; try again when it is done`);
    checkQuota(vm.id, this.options.repo.usage(vm.id), this.quota);
    this.busy.add(vm.id);
    const id = `snap-${randomBytes(6).toString('hex')}`;
    const dir = join(liveSnapshotsDir(this.options.layout), id);
    try {
      ensurePrivateDir(liveSnapshotsDir(this.options.layout));
      mkdirSync(dir, { mode: 0o700 });
      const scratch = vm.scratchDiskPath ? join(dir, SCRATCH_DISK_FILE) : undefined;
      const written = await vm.liveSnapshot({ statePath: join(dir, 'state'), memoryPath: join(dir, 'memory') }, scratch);
      const files: LiveSnapshotFileSet = {
        state: join(dir, 'state'),
        ...(written.memoryPath ? { memory: written.memoryPath } : {}),
        ...(scratch ? { scratch } : {}),
      };
      const pauseMs = written.pauseMs;
      const sizeBytes = [files.state, files.memory, files.scratch].reduce((sum, path) => sum + (path ? allocatedBytes(path) : 0), 0);
      // The size is known only now: a snapshot that would overflow the total is dropped.
      const usage = this.options.repo.usage(vm.id);
      checkQuota(vm.id, { vmCount: 0, totalBytes: usage.totalBytes }, this.quota, sizeBytes);
      const shape = vm.shape;
      const record: LiveSnapshotRecord = {
        id,
        vmId: vm.id,
        name,
        createdAt: new Date().toISOString(),
        dir,
        files,
        sizeBytes,
        pauseMs: Math.round(pauseMs * 10) / 10,
        profile: vm.profileName,
        driver: vm.driverName,
        meta: {
          image: shape.image.manifest.name,
          imageDigest: shape.image.manifest.digest,
          vcpus: shape.vcpus,
          memoryMib: shape.memoryMib,
          kernelArgs: shape.kernelArgs,
          memoryBackend: vm.hasMemoryBackend,
          network: shape.network,
          ...(vm.network ? { subnet: vm.network.subnet } : {}),
          diskMib: shape.diskMib,
          ...(request.persisted ? { persisted: true } : {}),
        },
      };
      this.options.repo.insert(record);
      return record;
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    } finally {
      this.busy.delete(vm.id);
    }
  }

  /** Throws SnapshotNotFoundError. */
  get(id: string): LiveSnapshotRecord {
    const found = ID_RE.test(id) ? this.options.repo.get(id) : null;
    if (!found) throw new SnapshotNotFoundError(`no snapshot ${id.slice(0, 80)}; list them with GET /v1/snapshots or tfc vm snapshots`);
    return found;
  }

  list(options: { vmId?: string } = {}): LiveSnapshotRecord[] {
    return this.options.repo.list(options);
  }

  /** Removes the row, then the files. Throws SnapshotNotFoundError. */
  delete(id: string): void {
    const record = this.get(id);
    this.options.repo.delete(record.id);
    rmSync(record.dir, { recursive: true, force: true });
  }

  /**
   * Rolls `vm` back to its own snapshot `snapshotId` (same id, same
   * network). Throws SnapshotNotFoundError, InvalidArgumentError (a
   * snapshot of another VM), and what Vm.rollback throws.
   */
  async rollback(vm: Vm, snapshotId: string): Promise<{ rollbackMs: number; snapshot: LiveSnapshotRecord }> {
    const record = this.get(snapshotId);
    if (record.vmId !== vm.id) {
      throw new InvalidArgumentError(`snapshot ${record.id} is of VM ${record.vmId}, not ${vm.id}; fork it instead to get a VM in that state`);
    }
    const { rollbackMs } = await vm.rollback(snapshotFiles(record));
    return { rollbackMs, snapshot: record };
  }

  /**
   * `count` new VMs, each restored from snapshot `snapshotId` with its own
   * network and fresh entropy (the restore step list of clones). All or
   * nothing: when one fails the others are destroyed. Each runs under a
   * lease of `ttlMs` (DetachedLeases: default 10 minutes). A QEMU snapshot
   * of a golden clone gets a fork base on its first fork (fork-base.ts):
   * forks then map its RAM copy-on-write instead of each loading a copy.
   * Throws InvalidArgumentError (count, ttl, profile or image gone),
   * SnapshotNotFoundError, errors making the fork base, and restore errors.
   */
  async fork(snapshotId: string, count: number, options: { ttlMs?: number } = {}): Promise<Vm[]> {
    if (!Number.isInteger(count) || count < 1 || count > MAX_FORK_COUNT) {
      throw new InvalidArgumentError(`count must be an integer from 1 to ${MAX_FORK_COUNT}, got ${count}`);
    }
    const ttlMs = DetachedLeases.ttl(options.ttlMs);
    const { profile: forkProfile, image, record } = this.restorable(this.get(snapshotId));
    const base = await this.forkBases.ensure(record, image);
    const snapshot = (base && forkBaseFiles(base)) ?? snapshotFiles(record);
    const settled = await Promise.allSettled(
      Array.from({ length: count }, () => this.options.service.restore({ profile: forkProfile, driver: record.driver as DriverName, snapshot, image })),
    );
    const made = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await Promise.allSettled(made.map((vm) => this.options.service.destroy(vm, 'another fork of the same request failed')));
      throw failed.reason;
    }
    for (const vm of made) this.leases.start(vm.id, ttlMs);
    return made;
  }

  /** The profile (sized as the snapshot's VM) and image a snapshot restores with. Throws InvalidArgumentError when either is gone. */
  private restorable(record: LiveSnapshotRecord): { profile: VmProfile; image: BuiltImage; record: LiveSnapshotRecord } {
    const profile = this.options.profiles(record.profile);
    if (!profile) throw new InvalidArgumentError(`profile ${record.profile} of snapshot ${record.id} is no longer configured`);
    const image = this.options.service.image(record.meta.image);
    if (image.manifest.digest !== record.meta.imageDigest) {
      throw new InvalidArgumentError(`image ${record.meta.image} was rebuilt since snapshot ${record.id} was taken; the snapshot cannot be restored`);
    }
    const forkProfile: VmProfile = {
      ...profile,
      vcpus: record.meta.vcpus,
      memoryMib: record.meta.memoryMib,
      diskMib: record.meta.diskMib,
      ...(record.meta.network ? {} : { network: undefined }),
    };
    if (record.meta.network && !profile.network?.enabled) {
      throw new InvalidArgumentError(`profile ${record.profile} no longer enables networking, but snapshot ${record.id} has a network device`);
    }
    return { profile: forkProfile, image, record };
  }

  /**
   * Pause to disk, first half: a snapshot that holds the VM's state until
   * it is resumed (kept across its stop and daemon restarts). The caller
   * then stops the VM, which frees its memory. Throws InvalidStateError when
   * the VM is paused to disk already, and what `snapshot` throws.
   */
  async persist(vm: Vm): Promise<LiveSnapshotRecord> {
    if (this.persisted(vm.id)) throw new InvalidStateError(`VM ${vm.id} has a pause-to-disk snapshot already`);
    return this.snapshot(vm, { persisted: true });
  }

  /** The pause-to-disk snapshot of `vmId`, if it has one. */
  persisted(vmId: string): LiveSnapshotRecord | null {
    return this.options.repo.list({ vmId }).find((r) => r.meta.persisted === true) ?? null;
  }

  /**
   * Pause to disk, second half: brings VM `vmId` back from its persisted
   * snapshot under its own id (new VMM and run dir; its network gets the
   * same subnet and address again unless another VM took it meanwhile),
   * then deletes that snapshot. Works after a daemon restart. The VM runs
   * under a lease of `ttlMs` (default 10 minutes), as a fork does. Throws
   * VmNotFoundError without one, and what `fork` throws.
   */
  async revive(vmId: string, options: { ttlMs?: number } = {}): Promise<Vm> {
    const ttlMs = DetachedLeases.ttl(options.ttlMs);
    const record = this.persisted(vmId);
    if (!record) throw new VmNotFoundError(`VM ${vmId} is neither running nor paused to disk`);
    const { profile, image } = this.restorable(record);
    const vm = await this.options.service.restore({
      profile,
      driver: record.driver as DriverName,
      snapshot: snapshotFiles(record),
      image,
      revive: vmId,
      ...(record.meta.subnet ? { subnet: record.meta.subnet } : {}),
    });
    this.delete(record.id);
    this.leases.start(vm.id, ttlMs);
    return vm;
  }

  /** Start-up: removes unnamed snapshots of VMs not in `liveVmIds` (they died with an earlier process). Never throws. */
  removeOrphans(liveVmIds: ReadonlySet<string>): void {
    let vmIds: string[];
    try {
      vmIds = [...new Set(this.options.repo.list().map((r) => r.vmId))];
    } catch {
      return;
    }
    for (const vmId of vmIds) if (!liveVmIds.has(vmId)) this.removeUnnamed(vmId);
  }

  /** Removes the unnamed snapshots of a VM that is gone (named ones stay until deleted). Never throws. */
  removeUnnamed(vmId: string): void {
    try {
      for (const record of this.options.repo.list({ vmId })) {
        if (record.name !== null || record.meta.persisted) continue;
        this.options.repo.delete(record.id);
        rmSync(record.dir, { recursive: true, force: true });
      }
    } catch {
      // the store is unwritable: the rows and files stay until deleted through the API
    }
  }
}

/**
 * The SnapshotFiles a VMM restores a live snapshot from: QEMU's hold all RAM
 * in the state stream (memoryInState); Firecracker's have a memory file of
 * their own, mapped privately by each VM restored from it.
 */
export function snapshotFiles(record: LiveSnapshotRecord): SnapshotFiles {
  const scratch = record.files.scratch ? { scratchDiskPath: record.files.scratch } : {};
  if (record.files.memory) return { memoryPath: record.files.memory, statePath: record.files.state, ...scratch };
  return {
    memoryPath: record.files.state,
    statePath: record.files.state,
    ...scratch,
    memoryInState: { memoryBackend: record.meta.memoryBackend },
  };
}

/** Bytes a (possibly sparse) file takes on disk. */
function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}
