/**
 * Configuring a Firecracker process over its API, as a named list of steps
 * (after firecracker-go-sdk's handler lists). The cold boot configures every
 * device, then the instance's start() sends InstanceStart; a restore is the
 * same list edited: the boot-only devices removed (a snapshot brings its
 * own, and Firecracker refuses /snapshot/load once any was configured) and
 * `load_snapshot` inserted after logger and metrics, which are not part of a
 * snapshot and must be configured on every new process.
 *
 * Steps that depend on the spec's Firecracker options (drives, network
 * interfaces, MMDS) are always in the list and do nothing when not asked
 * for, so the list reads the same for every VM and timings line up.
 * Refusals come back as FirecrackerApiError carrying Firecracker's
 * fault_message; the runner wraps them in StepFailedError naming the step.
 */
import { StepList, type Step } from '../../steps/index.js';
import type { VmLaunchSpec } from '../driver.js';
import type { FirecrackerApiClient } from './api-client.js';
import type * as Api from './api.gen.js';
import { DEFAULT_GUEST_CID, type FirecrackerLaunchOptions } from './launch-options.js';
import { VMM_FILE_NAMES, type VmmFiles } from './files.js';
import type { FirecrackerLogLevel } from './log-file.js';
import { loggerLevel } from './log-file.js';
import type { MetricsSink } from './metrics.js';

export interface ConfigContext {
  api: FirecrackerApiClient;
  spec: VmLaunchSpec;
  options: FirecrackerLaunchOptions;
  files: VmmFiles;
  logLevel: FirecrackerLogLevel;
  metricsSink: MetricsSink;
  /** Timeout of /snapshot/load (it maps the memory file and restores devices). */
  snapshotTimeoutMs: number;
}

export type ConfigStep = Step<ConfigContext>;

const logger: ConfigStep = {
  name: 'logger',
  async run(ctx) {
    await ctx.api.putLogger({ log_path: ctx.files.vmmPath(VMM_FILE_NAMES.log), level: loggerLevel(ctx.logLevel), show_level: true, show_log_origin: false });
  },
};

const metrics: ConfigStep = {
  name: 'metrics',
  async run(ctx) {
    await ctx.api.putMetrics({ metrics_path: ctx.files.vmmPath(VMM_FILE_NAMES.metrics[ctx.metricsSink]) });
  },
};

const machineConfig: ConfigStep = {
  name: 'machine_config',
  async run(ctx) {
    // The spec's size wins over anything in the options (the type forbids it; JSON callers may not know).
    await ctx.api.putMachineConfig({ smt: false, ...ctx.options.machine, vcpu_count: ctx.spec.vcpus, mem_size_mib: ctx.spec.memoryMib });
  },
};

const bootSource: ConfigStep = {
  name: 'boot_source',
  async run(ctx) {
    const body: Api.BootSource = { kernel_image_path: ctx.files.expose(ctx.spec.kernelPath, 'vmlinux'), boot_args: ctx.spec.kernelArgs };
    if (ctx.spec.initrdPath) body.initrd_path = ctx.files.expose(ctx.spec.initrdPath, 'initrd');
    await ctx.api.putBootSource(body);
  },
};

/**
 * Makes a drive's backing file reachable by Firecracker and returns the
 * path to send: the same for every VM restored from one snapshot (which
 * records it), i.e. `/drive-ID` in a jail, and a run-dir file's name
 * relative to the run dir otherwise (files.ts).
 */
function exposeDrive(ctx: ConfigContext, drive: Api.Drive): Api.Drive {
  if (drive.path_on_host === undefined) return { ...drive };
  return { ...drive, path_on_host: ctx.files.expose(drive.path_on_host, `drive-${drive.drive_id}`, { writable: drive.is_read_only !== true }) };
}

const drives: ConfigStep = {
  name: 'drives',
  async run(ctx) {
    for (const drive of ctx.options.drives ?? []) await ctx.api.putDrive(drive.drive_id, exposeDrive(ctx, drive));
  },
};

/**
 * Restore only: the snapshot brings the drive configuration, and
 * Firecracker opens the recorded paths at /snapshot/load, so each drive's
 * file must be where the template had it (in this VM's jail or run dir).
 */
const placeDrives: ConfigStep = {
  name: 'place_drives',
  async run(ctx) {
    for (const drive of ctx.options.drives ?? []) exposeDrive(ctx, drive);
  },
};

const networkInterfaces: ConfigStep = {
  name: 'network_interfaces',
  async run(ctx) {
    for (const iface of ctx.options.networkInterfaces ?? []) await ctx.api.putNetworkInterface(iface.iface_id, iface);
  },
};

const vsock: ConfigStep = {
  name: 'vsock',
  async run(ctx) {
    await ctx.api.putVsock({ guest_cid: ctx.options.vsockGuestCid ?? DEFAULT_GUEST_CID, uds_path: VMM_FILE_NAMES.vsock });
  },
};

const entropy: ConfigStep = {
  name: 'entropy',
  async run(ctx) {
    if (ctx.options.entropy === false) return;
    await ctx.api.putEntropy(ctx.options.entropy ?? {});
  },
};

/** MMDS needs the network interfaces it answers on, so it comes after them. */
const mmdsConfig: ConfigStep = {
  name: 'mmds_config',
  async run(ctx) {
    if (ctx.options.mmds) await ctx.api.putMmdsConfig(ctx.options.mmds.config);
  },
};

/** The data store is not part of a snapshot either: restores fill it again. */
const mmdsData: ConfigStep = {
  name: 'mmds_data',
  async run(ctx) {
    if (ctx.options.mmds?.data) await ctx.api.putMmds(ctx.options.mmds.data);
  },
};

const loadSnapshot: ConfigStep = {
  name: 'load_snapshot',
  async run(ctx) {
    const from = ctx.spec.restoreFrom!;
    const body: Api.SnapshotLoadParams = {
      snapshot_path: ctx.files.expose(from.statePath, 'snapshot.state'),
      // File backend: mapped privately (copy-on-write); the file must not change while clones live.
      mem_backend: { backend_type: 'File', backend_path: ctx.files.expose(from.memoryPath, 'snapshot.mem') },
      // Resumed by the instance's resume(), timed as its own phase.
      resume_vm: false,
    };
    if (ctx.options.networkOverrides?.length) body.network_overrides = ctx.options.networkOverrides;
    await ctx.api.loadSnapshot(body, { timeoutMs: ctx.snapshotTimeoutMs });
  },
};

/** Steps only a cold boot has: a snapshot carries this configuration. */
export const BOOT_ONLY_STEPS = ['machine_config', 'boot_source', 'drives', 'network_interfaces', 'vsock', 'entropy', 'mmds_config'] as const;

/**
 * The cold-boot configuration: logger, metrics, machine_config, boot_source,
 * drives, network_interfaces, vsock, entropy, mmds_config, mmds_data.
 * InstanceStart follows, sent by the instance's start().
 */
export function bootConfigSteps(): StepList<ConfigContext> {
  return new StepList([logger, metrics, machineConfig, bootSource, drives, networkInterfaces, vsock, entropy, mmdsConfig, mmdsData]);
}

/**
 * The restore configuration, the boot list edited: logger, metrics,
 * place_drives, load_snapshot, mmds_data. The instance's resume() follows.
 */
export function restoreConfigSteps(): StepList<ConfigContext> {
  const steps = bootConfigSteps();
  for (const name of BOOT_ONLY_STEPS) steps.remove(name);
  return steps.insertAfter('metrics', placeDrives).insertAfter('place_drives', loadSnapshot);
}
