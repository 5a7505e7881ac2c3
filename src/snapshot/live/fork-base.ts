/**
 * Fork bases: copy-on-write forks of a QEMU live snapshot (docs/snapshots.md,
 * "Fork"). A QEMU live snapshot is one migration stream holding device
 * state and all guest RAM, so every VM restored from it reads the whole
 * stream into RAM of its own. For a snapshot of a VM whose RAM was the
 * backend `mem` (golden clones, so every pool VM), the first fork turns the
 * snapshot into a golden-style one once, without ever running the guest: a
 * VMM restores the stream into a shared RAM file (`fork-memory`) and saves
 * its device state without RAM (`fork-state`). Forks then restore like
 * golden clones, mapping `fork-memory` privately (copy-on-write), and share
 * its unmodified pages. The files live in the snapshot's directory and go
 * with it; the snapshot's row records them and counts their size.
 *
 * Not here: rollback and resume from disk, which keep restoring the full
 * stream (one VM each: nothing to share), and Firecracker snapshots, whose
 * memory file is mapped privately already.
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SnapshotNotFoundError } from '../../errors/index.js';
import type { BuiltImage } from '../../guest/image-store.js';
import { NetExec } from '../../net/net-exec.js';
import { DEFAULT_NETNS_PREFIX, GUEST_LINK, shortId } from '../../net/index.js';
import { runCommand } from '../../process/index.js';
import { sealReadOnly } from '../../security/index.js';
import { CleanupStack } from '../../steps/index.js';
import type { LiveSnapshotRecord, LiveSnapshotRepository } from '../../store/index.js';
import { launchDrives, copyScratchDisk, SCRATCH_DISK_FILE } from '../../vm/disks.js';
import type { DriverName, SnapshotFiles, VmLaunchSpec, VmmDriver, VmNetworkAttachment } from '../../vmm/driver.js';
import type { LiveSnapshotQuota } from './quota.js';

/** File names of a fork base in the snapshot's directory. */
export const FORK_MEMORY_FILE = 'fork-memory';
export const FORK_STATE_FILE = 'fork-state';
/** Run directory of the VMM that makes a fork base (sockets, the scratch disk copy, console log); removed when it is done. */
export const FORK_BASE_RUN_DIR = 'fork-base.run';

/** How long the fork base's VMM gets to quit (its guest never ran: `quit` is immediate). */
const SHUTDOWN_GRACE_MS = 3000;

/**
 * True when forks of `record` can share a fork base: a QEMU snapshot (no
 * memory file of its own) of a VM whose RAM was the backend `mem`. A
 * cold-booted VM's RAM is the machine's default RAM, which a file backend
 * cannot stand in for; Firecracker snapshots have their memory file.
 */
export function canHaveForkBase(record: LiveSnapshotRecord): boolean {
  return record.driver === 'qemu' && record.files.memory === undefined && record.meta.memoryBackend === true;
}

/** True when `record` names a fork base whose files exist. */
export function hasForkBase(record: LiveSnapshotRecord): boolean {
  const { forkMemory, forkState } = record.files;
  return forkMemory !== undefined && forkState !== undefined && existsSync(forkMemory) && existsSync(forkState);
}

/**
 * The SnapshotFiles forks restore from when `record` has a fork base (the
 * golden clone path: RAM file mapped privately, device state without RAM);
 * null without one.
 */
export function forkBaseFiles(record: LiveSnapshotRecord): SnapshotFiles | null {
  const { forkMemory, forkState, scratch } = record.files;
  if (forkMemory === undefined || forkState === undefined) return null;
  return { memoryPath: forkMemory, statePath: forkState, ...(scratch ? { scratchDiskPath: scratch } : {}) };
}

/** Where materializeForkBase writes (paths that do not exist yet). */
export interface ForkBaseOutput {
  memoryPath: string;
  statePath: string;
}

/**
 * Makes a fork base of `record` without running its guest: spawns a VMM
 * that receives the live snapshot (all RAM) into the shared memory file
 * `out.memoryPath`, then saves its device state without RAM to
 * `out.statePath` (the golden snapshot path), and stops it. The VMM gets the
 * snapshot's devices: its disks (a copy of the scratch disk in the run dir)
 * and, for a networked VM, a TAP in a namespace of its own that exists only
 * meanwhile. Everything but the two output files is removed when it returns;
 * on failure those go too. Throws what the driver throws (VMM_EXITED,
 * QMP_ERROR, ...), PROCESS_FAILED (disk copy, namespace).
 */
export async function materializeForkBase(driver: VmmDriver, source: { record: LiveSnapshotRecord; image: BuiltImage }, out: ForkBaseOutput): Promise<void> {
  const { record, image } = source;
  const cleanup = new CleanupStack();
  let made = false;
  try {
    const runDir = join(record.dir, FORK_BASE_RUN_DIR);
    rmSync(runDir, { recursive: true, force: true }); // left by a process that died while making one
    mkdirSync(runDir, { mode: 0o700 });
    cleanup.push(`remove ${runDir}`, () => rmSync(runDir, { recursive: true, force: true }));
    // Removed on failure only; pushed before the VMM so that it has exited by then.
    cleanup.push('remove a half-made fork base', () => {
      if (made) return;
      rmSync(out.memoryPath, { force: true });
      rmSync(out.statePath, { force: true });
    });
    const scratch = record.files.scratch ? join(runDir, SCRATCH_DISK_FILE) : undefined;
    if (scratch) await copyScratchDisk(record.files.scratch!, scratch);
    const network = record.meta.network ? await privateNetwork(record.id, cleanup) : undefined;
    const drives = launchDrives(image.rootfsPath, scratch);
    const spec: VmLaunchSpec = {
      vmId: `forkbase-${record.id}`,
      runDir,
      consoleLogPath: join(runDir, 'console.log'),
      kernelPath: image.kernelPath,
      initrdPath: image.initrdPath,
      kernelArgs: record.meta.kernelArgs,
      vcpus: record.meta.vcpus,
      memoryMib: record.meta.memoryMib,
      snapshotMemoryPath: out.memoryPath,
      restoreFrom: { memoryPath: record.files.state, statePath: record.files.state, memoryInState: { memoryBackend: true } },
      ...(drives.length > 0 ? { drives } : {}),
      ...(network ? { network } : {}),
    };
    const vmm = new CleanupStack();
    cleanup.push('stop the fork base VMM', () => vmm.run());
    const instance = await driver.spawn(spec, vmm);
    await instance.loadSnapshot();
    // QEMU is paused once the stream is in (the snapshot was taken paused); said explicitly for every driver.
    await instance.pause();
    await instance.createSnapshot({ memoryPath: out.memoryPath, statePath: out.statePath });
    await instance.shutdown(SHUTDOWN_GRACE_MS);
    await digHoles(out.memoryPath);
    made = true;
  } finally {
    await cleanup.run();
  }
}

/**
 * Gives the zero blocks of the RAM file back as holes. QEMU loads the
 * kernel and initrd into guest RAM (the file) when it starts, before the
 * stream overwrites them, zero pages included (measured: about 22 MiB of
 * zeros in a 256 MiB VM's file). Best effort: the file is correct either way.
 */
async function digHoles(path: string): Promise<void> {
  await runCommand('fallocate', ['--dig-holes', path], { timeoutMs: 60_000 }).catch(() => undefined);
}

/**
 * A network namespace with the TAP a VM's virtio-net device is plugged
 * into, for a VMM that must have the device but never runs its guest (no
 * veth, addresses or rules). Named with the VM namespace prefix so that
 * start-up reconciliation removes one a crash left behind.
 */
async function privateNetwork(snapshotId: string, cleanup: CleanupStack): Promise<VmNetworkAttachment> {
  const exec = new NetExec();
  const netns = `${DEFAULT_NETNS_PREFIX}fb${shortId(snapshotId)}`;
  await exec.ip(null, ['netns', 'del', netns], true);
  await exec.ip(null, ['netns', 'add', netns]);
  cleanup.push(`remove network namespace ${netns}`, () => exec.ip(null, ['netns', 'del', netns], true));
  await exec.ip(netns, ['tuntap', 'add', 'dev', GUEST_LINK.tapName, 'mode', 'tap', 'user', '0']);
  return { netns, tapName: GUEST_LINK.tapName, guestMac: GUEST_LINK.guestMac };
}

export interface ForkBasesOptions {
  repo: LiveSnapshotRepository;
  /** The driver a snapshot was taken with (VmService.driver). */
  driver: (name: DriverName) => VmmDriver;
  quota: LiveSnapshotQuota;
  /** Makes the files; default materializeForkBase (tests count calls). */
  materialize?: typeof materializeForkBase;
}

/**
 * Makes each snapshot's fork base once: concurrent forks of one snapshot
 * wait for the same making, later ones (also after a daemon restart) find it
 * in the snapshot's row.
 */
export class ForkBases {
  private readonly making = new Map<string, Promise<LiveSnapshotRecord | null>>();

  constructor(private readonly options: ForkBasesOptions) {}

  /**
   * `record` with its fork base, made now if it has none; null when its
   * forks cannot share one (canHaveForkBase) or the fork base would push the
   * snapshots over the total size quota (forks then restore the full
   * stream, as before: slower to start, more memory, but they work). Throws
   * SnapshotNotFoundError when the snapshot is deleted meanwhile, and what
   * materializeForkBase throws; nothing of a failed attempt stays, and the
   * next fork tries again.
   */
  ensure(record: LiveSnapshotRecord, image: BuiltImage): Promise<LiveSnapshotRecord | null> {
    if (!canHaveForkBase(record)) return Promise.resolve(null);
    if (hasForkBase(record)) return Promise.resolve(record);
    let making = this.making.get(record.id);
    if (!making) {
      making = this.make(record.id, image).finally(() => this.making.delete(record.id));
      this.making.set(record.id, making);
    }
    return making;
  }

  private async make(id: string, image: BuiltImage): Promise<LiveSnapshotRecord | null> {
    const { repo, quota } = this.options;
    const record = repo.get(id);
    if (!record) throw gone(id);
    if (hasForkBase(record)) return record; // another process made it meanwhile
    // The RAM file takes about what the stream's pages take (zero pages are holes in both).
    const estimate = allocatedBytes(record.files.state);
    if (repo.usage(record.vmId).totalBytes + estimate > quota.totalBytes) return null;

    const final = { memoryPath: join(record.dir, FORK_MEMORY_FILE), statePath: join(record.dir, FORK_STATE_FILE) };
    const temp = { memoryPath: `${final.memoryPath}.tmp`, statePath: `${final.statePath}.tmp` };
    const removeAll = () => {
      for (const path of [...Object.values(temp), ...Object.values(final)]) rmSync(path, { force: true });
    };
    removeAll(); // a half-made one of a process that died, or files the row no longer names
    try {
      await (this.options.materialize ?? materializeForkBase)(this.options.driver(record.driver as DriverName), { record, image }, temp);
      // Forks map (or read) these files: root-owned and read-only, as golden snapshot files are.
      sealReadOnly([temp.memoryPath, temp.statePath]);
      // State last: a row is only ever written after both are in place.
      renameSync(temp.memoryPath, final.memoryPath);
      renameSync(temp.statePath, final.statePath);
    } catch (err) {
      removeAll();
      if (!repo.get(id)) throw gone(id, err);
      throw err;
    }
    const current = repo.get(id);
    if (!current) {
      rmSync(record.dir, { recursive: true, force: true }); // deleted while the fork base was made
      throw gone(id);
    }
    const updated: LiveSnapshotRecord = {
      ...current,
      files: { ...current.files, forkMemory: final.memoryPath, forkState: final.statePath },
      sizeBytes: current.sizeBytes + allocatedBytes(final.memoryPath) + allocatedBytes(final.statePath),
    };
    let stored: boolean;
    try {
      stored = repo.updateFiles(id, updated.files, updated.sizeBytes);
    } catch (err) {
      removeAll();
      throw err;
    }
    if (!stored) {
      rmSync(record.dir, { recursive: true, force: true }); // deleted between the read above and the update
      throw gone(id);
    }
    return updated;
  }
}

function gone(id: string, cause?: unknown): Error {
  return new SnapshotNotFoundError(`snapshot ${id} was deleted while its forks were being prepared`, cause === undefined ? {} : { cause });
}

/** Bytes a (possibly sparse) file takes on disk. */
function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}
