import type { AgentClient } from '../guest/agent-client.js';
import type { ExitInfo } from '../process/index.js';
import type { CleanupStack } from '../steps/index.js';

export type DriverName = 'qemu' | 'firecracker';
export type AccelName = 'kvm' | 'tcg';

/** What a driver needs to start one VM. Paths must exist except the sockets it creates. */
export interface VmLaunchSpec {
  vmId: string;
  /** Per-VM directory for sockets and state; created and removed by the caller. */
  runDir: string;
  /** Serial console output is appended here. */
  consoleLogPath: string;
  /** Cap of the console log and its rotated `.1` (vmm.console_log_max_bytes); default 8 MiB. */
  consoleLogMaxBytes?: number;
  kernelPath: string;
  initrdPath: string;
  /** Complete guest kernel command line (driver base args + profile args). */
  kernelArgs: string;
  vcpus: number;
  memoryMib: number;
  /**
   * Boot so that the VM can later become a golden snapshot whose memory
   * clones map copy-on-write. QEMU: guest RAM lives in this file (shared
   * mapping). Firecracker ignores it (its snapshot writes the memory file).
   */
  snapshotMemoryPath?: string;
  /**
   * Spawn to receive this snapshot instead of booting the kernel: the VMM
   * starts waiting for `loadSnapshot`. kernelPath/initrdPath are still the
   * template's (QEMU needs an identical machine).
   */
  restoreFrom?: SnapshotFiles;
  /**
   * Attach the guest to a TAP inside a network namespace (set up by the
   * net module). The VMM process then runs inside `netns`.
   */
  network?: VmNetworkAttachment;
  /**
   * Block devices, in guest order: the first is /dev/vda, the next /dev/vdb
   * (docs/disks.md). A clone must be spawned with the same list as its
   * template (same ids, same order, same read-only flags): the snapshot's
   * device state expects them.
   */
  drives?: VmDrive[];
}

/** One virtio-blk device of a VM. */
export interface VmDrive {
  /** `rootfs`: the image's root filesystem (read-only); `scratch`: the VM's own writable disk. */
  id: 'rootfs' | 'scratch';
  /** Host file (raw image); it must exist when the VMM is spawned. */
  path: string;
  readOnly: boolean;
}

/** Where a VM's network interface lives: the same TAP name and guest MAC in every VM's own namespace. */
export interface VmNetworkAttachment {
  netns: string;
  tapName: string;
  guestMac: string;
}

/** The files of one VM snapshot. The memory file must not change while any VM restored from it lives. */
export interface SnapshotFiles {
  /** Guest memory (QEMU: the template's RAM file; Firecracker: the `mem_file_path`). */
  memoryPath: string;
  /** Device/VM state (QEMU: migration stream without RAM; Firecracker: `snapshot_path`). */
  statePath: string;
  /**
   * The template's scratch disk as it was at snapshot time (the guest's
   * memory has it mounted). Not read by drivers: each clone gets its own
   * copy of it (src/vm). Absent when the profile has no scratch disk.
   */
  scratchDiskPath?: string;
  /**
   * A snapshot of a running VM (src/snapshot/live): `statePath` holds all
   * guest RAM as well as device state, and `memoryPath` is not read. The
   * VMM is given the same memory layout the VM had: a RAM backend named
   * like a golden clone's (`memoryBackend`), or the machine's default RAM.
   */
  memoryInState?: { memoryBackend: boolean };
}

/** Where createLiveSnapshot writes (absolute host paths that do not exist yet). */
export interface LiveSnapshotPaths {
  statePath: string;
  memoryPath: string;
}

export interface DriverInfo {
  name: DriverName;
  binary: string;
  version: string;
  accel: AccelName;
  /** Why this accelerator was chosen (shown by `tfc doctor` and in logs). */
  accelReason: string;
}

/**
 * A VMM driver. Every driver passes the shared contract suite. Boot is split
 * into the same named steps for all drivers: spawn -> configure -> start;
 * waiting for the kernel and the agent is driver-independent.
 */
export interface VmmDriver {
  readonly name: DriverName;
  /** Checks the binary and chooses the accelerator; memoised. Throws VmmBinaryNotFoundError / AccelUnavailableError. */
  probe(): Promise<DriverInfo>;
  /** Kernel command line the driver needs before profile args (console device, reboot behaviour). */
  baseKernelArgs(): string;
  /**
   * Starts the VMM process with the guest not yet running and returns once
   * its control channel answers. Registers the process and its sockets on
   * `cleanup`. Throws VmmSpawnFailedError / VmmExitedError with the VMM's stderr.
   */
  spawn(spec: VmLaunchSpec, cleanup: CleanupStack): Promise<VmmInstance>;
  /**
   * Removes what a VM of this driver may leave outside its run directory
   * when its owner process died without cleaning up (Firecracker: the jail).
   * Called by start-up reconciliation; returns what it removed; never throws.
   */
  removeLeftovers?(vmId: string): string[];
}

export interface VmmInstance {
  readonly pid: number;
  readonly accel: AccelName;
  /** Applies machine configuration that is not on the command line. Call once, before start(). */
  configure(): Promise<void>;
  /** Lets the guest run. Call once. */
  start(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /**
   * Writes a snapshot of the paused VM. QEMU requires `files.memoryPath` to
   * be the spec's snapshotMemoryPath (the RAM file itself is the memory
   * snapshot). Afterwards the VM must not run again if clones will map the
   * memory file: the caller shuts it down. Throws on a running VM.
   */
  createSnapshot(files: SnapshotFiles): Promise<void>;
  /**
   * Writes a snapshot of the paused VM from which it can be restored later
   * (through restoreFrom); afterwards the VM may be resumed. QEMU writes all
   * RAM and device state to `paths.statePath` (restored with memoryInState)
   * and ignores `memoryPath`; Firecracker writes a Full snapshot: device
   * state to `statePath`, guest memory to `memoryPath`. Returns the memory
   * file when one was written. Optional: a driver without it cannot
   * snapshot running VMs (SNAPSHOT_UNSUPPORTED).
   */
  createLiveSnapshot?(paths: LiveSnapshotPaths): Promise<{ memoryPath?: string }>;
  /** Loads the snapshot given as spec.restoreFrom into this freshly spawned VMM; the VM stays paused. Call once. */
  loadSnapshot(): Promise<void>;
  /** Connects to the guest agent channel (the agent may not be up yet: hello() waits). */
  connectAgent(options: { timeoutMs: number; signal?: AbortSignal }): Promise<AgentClient>;
  /** Resolves when a console line matches; rejects with VmmExitedError if the VMM exits first, or on timeout. */
  waitForConsole(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** Last console lines, for error messages. */
  consoleTail(lines?: number): string;
  /** Asks the VMM to quit, then SIGKILLs it after `graceMs`. Idempotent. */
  shutdown(graceMs: number): Promise<ExitInfo>;
  readonly exited: boolean;
  /** Resolves when the VMM process exits. Never rejects. */
  wait(): Promise<ExitInfo>;
}
