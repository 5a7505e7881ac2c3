import { basename, dirname } from 'node:path';
import { InvalidArgumentError } from '../../errors/index.js';
import type { AccelName, VmLaunchSpec } from '../driver.js';

/** Name of the virtio-serial port the guest agent opens (see docs/agent-protocol.md). */
export const AGENT_PORT_NAME = 'org.tfc.agent';

export interface QemuSockets {
  qmp: string;
  agent: string;
}

/**
 * Socket names of snapshot migration, relative to the VM's run dir: QEMU
 * runs with the run dir as its working directory and resolves them there,
 * so after dropping to the VM's uid it needs no access to the (0700) data
 * dir above it.
 */
export const MIGRATE_OUT_SOCKET = 'migrate-out.sock';
export const MIGRATE_IN_SOCKET = 'migrate-in.sock';

/** Who QEMU becomes after opening its devices (-runas), and its seccomp sandbox (-sandbox). */
export interface QemuConfinement {
  uid: number;
  gid: number;
  sandbox: string;
}

/**
 * Host-side settings of every QEMU process (config `[vmm.qemu]`). None of
 * them is part of the migration stream, so none changes which golden
 * snapshot a VM may restore (src/snapshot/snapshot-key.ts need not name
 * them). Measured in docs/density.md.
 */
export interface QemuTuning {
  /**
   * `vmm.qemu.tcg_tb_size_mib`: size of TCG's translation buffer in MiB
   * (`-accel tcg,tb-size=N`); 0 = QEMU's own default (1024 MiB for system
   * emulation). Ignored under KVM, which translates nothing.
   */
  tcgTbSizeMib: number;
  /**
   * `vmm.qemu.mem_merge`: `-machine mem-merge=on|off`, whether QEMU marks
   * guest RAM mergeable for the host's KSM. Off unless asked for: merging
   * pages between VMs of different tenants opens a timing side channel.
   */
  memMerge: boolean;
}

/**
 * The defaults of `[vmm.qemu]` tuning (the config defaults say the same;
 * argv.test.ts checks they agree). tb-size 128: an idle clone translates
 * about 10 MiB, a cold boot 42 MiB, python 38 MiB, node more than 170 MiB
 * over three runs (its JIT makes new guest code every run); QEMU's 1 GiB
 * default lets a busy VM keep up to 1 GiB of translations.
 */
export const DEFAULT_QEMU_TUNING: Readonly<QemuTuning> = { tcgTbSizeMib: 128, memMerge: false };

/** The `-accel` value: TCG with its translation buffer size, when one is set; KVM as is. */
export function accelArg(accel: AccelName, tuning: Pick<QemuTuning, 'tcgTbSizeMib'>): string {
  if (!Number.isInteger(tuning.tcgTbSizeMib) || tuning.tcgTbSizeMib < 0) {
    throw new InvalidArgumentError(`TCG tb-size must be a whole number of MiB (0 = QEMU's default), got ${tuning.tcgTbSizeMib}; fix vmm.qemu.tcg_tb_size_mib`);
  }
  return accel === 'tcg' && tuning.tcgTbSizeMib > 0 ? `tcg,tb-size=${tuning.tcgTbSizeMib}` : accel;
}

/**
 * Builds the QEMU microvm command line (argv, no shell). The guest starts
 * stopped (-S) so the caller times `cont` separately; -no-reboot turns a
 * guest reboot (the agent's shutdown) into QEMU exiting. The console goes
 * to stdout, where the owner captures it. With a confinement QEMU opens
 * everything (kernel, RAM file, sockets, TAP) as root, then enters its
 * seccomp sandbox and becomes the VM's own uid before the guest runs.
 * Flags verified in DESIGN.md, except
 * `rtc=on`: with rtc=off the guest kernel waits 1 s twice for a CMOS RTC that
 * is not there ("Unable to read current time from RTC", "rtc_cmos: broken or
 * not accessible"); measured under TCG, init starts about 2 s earlier with
 * the RTC on, and the guest boots with the right wall-clock time.
 * `tuning` adds host-side settings (QemuTuning; DEFAULT_QEMU_TUNING when
 * the caller has none). Throws InvalidArgumentError for a spec it cannot
 * express (see below) or a negative tb-size.
 */
export function buildQemuArgv(
  spec: VmLaunchSpec,
  accel: AccelName,
  sockets: QemuSockets,
  confinement: QemuConfinement | null = null,
  tuning: Readonly<QemuTuning> = DEFAULT_QEMU_TUNING,
): string[] {
  // Snapshot-capable VMs keep RAM in a file: shared for the template (so
  // the file is the memory snapshot), private (copy-on-write) for clones.
  // A snapshot of a running VM carries its RAM in the state stream: the
  // restored VM gets anonymous RAM under the same name (or the default RAM),
  // unless it is restored to become a snapshot itself (a fork base, see
  // src/snapshot/live/fork-base.ts): then the stream's RAM lands in the
  // shared file `snapshotMemoryPath`, as a template's does.
  const inState = spec.restoreFrom?.memoryInState;
  if (inState && !inState.memoryBackend && spec.snapshotMemoryPath) {
    throw new InvalidArgumentError(
      `VM ${spec.vmId}: a snapshot of a VM without a RAM memory backend (a cold-booted VM) cannot be restored into a memory file (${spec.snapshotMemoryPath}); restore it without snapshotMemoryPath`,
    );
  }
  const cloneFile = spec.restoreFrom && !inState ? spec.restoreFrom.memoryPath : undefined;
  const memoryFile = cloneFile ?? spec.snapshotMemoryPath;
  const named = memoryFile !== undefined || inState?.memoryBackend === true;
  const machine = `microvm,x-option-roms=off,rtc=on,isa-serial=on,mem-merge=${tuning.memMerge ? 'on' : 'off'}${named ? ',memory-backend=mem' : ''}`;
  const memoryBackend = memoryFile
    ? ['-object', `memory-backend-file,id=mem,size=${spec.memoryMib}M,mem-path=${memoryFile},share=${cloneFile ? 'off' : 'on'}`]
    : named
      ? ['-object', `memory-backend-ram,id=mem,size=${spec.memoryMib}M`]
      : [];
  return [
    '-M',
    machine,
    ...memoryBackend,
    '-accel',
    accelArg(accel, tuning),
    '-cpu',
    accel === 'kvm' ? 'host' : 'max',
    '-m',
    String(spec.memoryMib),
    '-smp',
    String(spec.vcpus),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-S',
    '-name',
    `tfc-${spec.vmId}`,
    '-kernel',
    spec.kernelPath,
    '-initrd',
    spec.initrdPath,
    '-append',
    spec.kernelArgs,
    '-chardev',
    'stdio,id=con,signal=off',
    '-serial',
    'chardev:con',
    '-qmp',
    `unix:${sockets.qmp},server=on,wait=off`,
    '-device',
    'virtio-serial-device',
    '-chardev',
    `socket,id=agent,path=${sockets.agent},server=on,wait=off`,
    '-device',
    `virtserialport,chardev=agent,name=${AGENT_PORT_NAME}`,
    ...driveArgs(spec),
    // A clone listens for its state from the start: the socket is made
    // before -runas drops privileges, in the run dir (the working directory).
    ...(spec.restoreFrom ? ['-incoming', `unix:${MIGRATE_IN_SOCKET}`] : []),
    ...(confinement ? ['-sandbox', confinement.sandbox, '-runas', `${confinement.uid}:${confinement.gid}`] : []),
  ];
}

/**
 * -drive/-device pairs of the spec's block devices, in order: the guest
 * names them /dev/vda, /dev/vdb, ... in the order their virtio-mmio devices
 * are created. cache=writeback for both kinds: the read-only root is then
 * read through the host page cache, one copy shared by every VM using the
 * image (cache=none, O_DIRECT, would make each VM read it from disk); the
 * scratch disk's guest flushes reach the host file (cache=unsafe would drop
 * them, which is what a snapshot's `sync` relies on). The serial makes the
 * disk recognisable in the guest (/sys/block/vdX/serial). QEMU option
 * syntax escapes a comma in a path by doubling it.
 */
export function driveArgs(spec: Pick<VmLaunchSpec, 'drives' | 'runDir'>): string[] {
  return (spec.drives ?? []).flatMap((d) => [
    '-drive',
    `file=${qemuDrivePath(spec.runDir, d.path).replace(/,/g, ',,')},if=none,id=${d.id},format=raw,readonly=${d.readOnly ? 'on' : 'off'},cache=writeback`,
    '-device',
    `virtio-blk-device,drive=${d.id},serial=${d.id}`,
  ]);
}

/**
 * A disk in the VM's run dir is named relative to it (QEMU's working
 * directory). QEMU reopens a writable disk by name when the block layer
 * changes its permissions (inactivation at the end of an outgoing
 * migration, activation after an incoming one), by then as the VM's uid,
 * which cannot traverse the 0700 data dir above the run dir (measured:
 * `bdrv_inactivate_all() failed` otherwise). Read-only disks are never
 * reopened for writing and keep their absolute path.
 */
export function qemuDrivePath(runDir: string, path: string): string {
  return dirname(path) === runDir ? `./${basename(path)}` : path;
}

/** Kernel args the QEMU driver always needs (DESIGN.md: without tsc_early_khz TCG guests hang in TSC calibration). */
export const QEMU_BASE_KERNEL_ARGS = 'console=ttyS0 panic=-1 reboot=t tsc_early_khz=2000000 tsc=reliable tfc.agent=serial';
