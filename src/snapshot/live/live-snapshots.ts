import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, InvalidStateError, SnapshotNotFoundError, VmNotFoundError } from '../../errors/index.js';
import type { BuiltImage } from '../../guest/image-store.js';
import type { DataLayout, LiveSnapshotRecord, LiveSnapshotRepository } from '../../store/index.js';
import type { DriverName, SnapshotFiles } from '../../vmm/driver.js';
import type { Vm } from '../../vm/vm.js';
import type { VmProfile, VmService } from '../../vm/vm-service.js';
import { SCRATCH_DISK_FILE } from '../../vm/disks.js';
import { ensurePrivateDir } from '../../security/index.js';
import { checkQuota, DEFAULT_LIVE_SNAPSHOT_QUOTA, type LiveSnapshotQuota } from './quota.js';

/** Most VMs one fork makes. */
export const MAX_FORK_COUNT = 16;
/** Longest snapshot name; names are [A-Za-z0-9._-]. */
export const MAX_SNAPSHOT_NAME_LENGTH = 64;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ID_RE = /^snap-[0-9a-f]{12}$/;

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

  constructor(private readonly options: LiveSnapshotServiceOptions) {
    this.quota = options.quota ?? DEFAULT_LIVE_SNAPSHOT_QUOTA;
    options.service.onDestroyed((vmId) => this.removeUnnamed(vmId));
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
      const files = { state: join(dir, 'state'), ...(vm.scratchDiskPath ? { scratch: join(dir, SCRATCH_DISK_FILE) } : {}) };
      const { pauseMs } = await vm.liveSnapshot(files.state, files.scratch);
      const sizeBytes = allocatedBytes(files.state) + (files.scratch ? allocatedBytes(files.scratch) : 0);
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
   * nothing: when one fails the others are destroyed. Throws
   * InvalidArgumentError (count, profile or image gone), SnapshotNotFoundError,
   * and restore errors.
   */
  async fork(snapshotId: string, count: number): Promise<Vm[]> {
    if (!Number.isInteger(count) || count < 1 || count > MAX_FORK_COUNT) {
      throw new InvalidArgumentError(`count must be an integer from 1 to ${MAX_FORK_COUNT}, got ${count}`);
    }
    const { profile: forkProfile, image, record } = this.restorable(this.get(snapshotId));
    const settled = await Promise.allSettled(
      Array.from({ length: count }, () =>
        this.options.service.restore({ profile: forkProfile, driver: record.driver as DriverName, snapshot: snapshotFiles(record), image }),
      ),
    );
    const made = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await Promise.allSettled(made.map((vm) => this.options.service.destroy(vm, 'another fork of the same request failed')));
      throw failed.reason;
    }
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
   * snapshot under its own id (new VMM, run dir and network; the address may
   * differ from before), then deletes that snapshot. Works after a daemon
   * restart. Throws VmNotFoundError without one, and what `fork` throws.
   */
  async revive(vmId: string): Promise<Vm> {
    const record = this.persisted(vmId);
    if (!record) throw new VmNotFoundError(`VM ${vmId} is neither running nor paused to disk`);
    const { profile, image } = this.restorable(record);
    const vm = await this.options.service.restore({
      profile,
      driver: record.driver as DriverName,
      snapshot: snapshotFiles(record),
      image,
      revive: vmId,
    });
    this.delete(record.id);
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

/** The SnapshotFiles a VMM restores a live snapshot from (all RAM is in the state stream). */
export function snapshotFiles(record: LiveSnapshotRecord): SnapshotFiles {
  return {
    memoryPath: record.files.state,
    statePath: record.files.state,
    ...(record.files.scratch ? { scratchDiskPath: record.files.scratch } : {}),
    memoryInState: { memoryBackend: record.meta.memoryBackend },
  };
}

/** Bytes a (possibly sparse) file takes on disk. */
function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}
