/**
 * One running Firecracker process behind the VmmInstance interface: the
 * configuration step lists, InstanceStart, pause/resume, snapshots, the
 * guest agent over hybrid vsock, console, metrics and shutdown.
 */
import { constants, copyFileSync, lstatSync, renameSync, rmSync } from 'node:fs';
import type { AgentClient } from '../../guest/agent-client.js';
import { InvalidStateError, TfcError, VmmExitedError } from '../../errors/index.js';
import type { ExitInfo } from '../../process/index.js';
import { StepFailedError, type PhaseTiming, type StepList } from '../../steps/index.js';
import type { AccelName, LiveSnapshotPaths, SnapshotFiles, VmLaunchSpec, VmmInstance } from '../driver.js';
import type { FirecrackerApiClient } from './api-client.js';
import { FirecrackerApiError } from './api-errors.js';
import { bootConfigSteps, restoreConfigSteps, type ConfigContext } from './config-steps.js';
import { VMM_FILE_NAMES, type VmmFiles } from './files.js';
import { agentPortOf, type FirecrackerLaunchOptions } from './launch-options.js';
import type { LaunchedVmm } from './launcher.js';
import { readLogTail, type FirecrackerLogLevel } from './log-file.js';
import type { FirecrackerMetrics, MetricsSink } from './metrics.js';
import { connectVsockAgent } from './vsock.js';

export interface InstanceSettings {
  logLevel: FirecrackerLogLevel;
  metricsSink: MetricsSink;
  /** Timeout of snapshot create and load, which move guest memory. */
  snapshotTimeoutMs: number;
}

/** Console lines kept by ConsoleTap (its default tail). */
const CONSOLE_LOOKBACK_LINES = 40;

type Stage = 'spawned' | 'configured' | 'started' | 'loaded';

/** A Firecracker VM; created only by FirecrackerDriver.spawn. */
export class FirecrackerInstance implements VmmInstance {
  readonly accel: AccelName = 'kvm';
  private stage: Stage = 'spawned';
  private phases: PhaseTiming[] = [];

  constructor(
    private readonly vmm: LaunchedVmm,
    private readonly spec: VmLaunchSpec,
    private readonly options: FirecrackerLaunchOptions,
    private readonly settings: InstanceSettings,
  ) {}

  get pid(): number {
    return this.vmm.child.pid;
  }

  get exited(): boolean {
    return this.vmm.child.exited;
  }

  /** The process's `--id`. */
  get id(): string {
    return this.vmm.id;
  }

  /** The API client, for operations the interface has no method for (rate-limiter PATCHes, MMDS updates, balloon). */
  get api(): FirecrackerApiClient {
    return this.vmm.api;
  }

  /** Where its files are (run dir or jail). */
  get files(): VmmFiles {
    return this.vmm.files;
  }

  /** Host path of the hybrid vsock socket. */
  get vsockPath(): string {
    return this.vmm.files.hostPath(VMM_FILE_NAMES.vsock);
  }

  /** Timings of the last configuration list run (configure or loadSnapshot), plus `api_socket` from spawn. */
  get configPhases(): readonly PhaseTiming[] {
    return [{ name: 'api_socket', ms: Math.round(this.vmm.socketReadyMs * 100) / 100 }, ...this.phases];
  }

  wait(): Promise<ExitInfo> {
    return this.vmm.child.wait();
  }

  /** Runs the cold-boot configuration list (bootConfigSteps). Call once, on a process not spawned for a restore. */
  async configure(): Promise<void> {
    if (this.spec.restoreFrom)
      throw new InvalidStateError(`VM ${this.spec.vmId} was spawned to restore a snapshot; call loadSnapshot() instead of configure()`);
    this.advance('configure', ['spawned'], 'configured');
    this.phases = await runNamingStep(bootConfigSteps(), this.context());
  }

  /** InstanceStart. Firecracker reports KVM problems here (e.g. /dev/kvm missing), as FirecrackerApiError. */
  async start(): Promise<void> {
    this.advance('start', ['configured'], 'started');
    await this.vmm.api.instanceStart();
  }

  async pause(): Promise<void> {
    this.requireRunning('pause');
    await this.vmm.api.pauseVm();
  }

  async resume(): Promise<void> {
    this.requireRunning('resume');
    await this.vmm.api.resumeVm();
  }

  /**
   * PUT /snapshot/create, Full: device state to `files.statePath`, guest
   * memory to `files.memoryPath` (a jailed VMM writes inside its jail; the
   * files are then moved out). Throws InvalidStateError unless Firecracker
   * reports the VM Paused, FirecrackerApiError for other refusals.
   */
  async createSnapshot(files: SnapshotFiles): Promise<void> {
    await this.writeFullSnapshot(files.statePath, files.memoryPath);
  }

  /**
   * A snapshot of a running VM (src/snapshot/live): the same Full snapshot
   * as createSnapshot, with its own memory file; Firecracker lets the VM be
   * resumed afterwards (PATCH /vm Resumed). Restored through restoreFrom
   * `{memoryPath, statePath}` like a golden snapshot.
   */
  async createLiveSnapshot(paths: LiveSnapshotPaths): Promise<{ memoryPath?: string }> {
    await this.writeFullSnapshot(paths.statePath, paths.memoryPath);
    return { memoryPath: paths.memoryPath };
  }

  private async writeFullSnapshot(statePath: string, memoryPath: string): Promise<void> {
    this.requireRunning('snapshot');
    const info = await this.vmm.api.describeInstance();
    if (info.state !== 'Paused') {
      throw new InvalidStateError(`cannot snapshot VM ${this.spec.vmId}: Firecracker reports it ${info.state} (a snapshot needs Paused; pause it first)`);
    }
    const jailed = this.vmm.files.jail !== null;
    const target = jailed
      ? { state: this.vmm.files.vmmPath('snapshot-out.state'), memory: this.vmm.files.vmmPath('snapshot-out.mem') }
      : { state: statePath, memory: memoryPath };
    try {
      await this.vmm.api.createSnapshot(
        { snapshot_type: 'Full', snapshot_path: target.state, mem_file_path: target.memory },
        { timeoutMs: this.settings.snapshotTimeoutMs },
      );
    } catch (err) {
      // What a failed request wrote in the jail goes, so the next snapshot starts clean.
      if (jailed) for (const name of ['snapshot-out.state', 'snapshot-out.mem']) rmSync(this.vmm.files.hostPath(name), { force: true });
      // The describe above and this request race with nothing we know of, but keep Firecracker's verdict typed.
      if (err instanceof FirecrackerApiError && err.httpStatus === 400 && /paused/i.test(err.faultMessage ?? '')) {
        throw new InvalidStateError(`cannot snapshot VM ${this.spec.vmId}: ${err.faultMessage}`, { cause: err });
      }
      throw err;
    }
    if (jailed) {
      moveOut(this.vmm.files.hostPath('snapshot-out.state'), statePath);
      moveOut(this.vmm.files.hostPath('snapshot-out.mem'), memoryPath);
    }
  }

  /** Runs the restore list (restoreConfigSteps): logger, metrics, /snapshot/load (paused), MMDS data. Call once, on a process spawned with spec.restoreFrom. */
  async loadSnapshot(): Promise<void> {
    if (!this.spec.restoreFrom) throw new InvalidStateError(`VM ${this.spec.vmId} was not spawned for a restore (no restoreFrom)`);
    this.advance('load a snapshot into', ['spawned'], 'loaded');
    this.phases = await runNamingStep(restoreConfigSteps(), this.context());
  }

  /** Connects to the guest agent through the hybrid vsock socket, retrying until `timeoutMs` while the guest is not listening. */
  connectAgent(options: { timeoutMs: number; signal?: AbortSignal }): Promise<AgentClient> {
    return connectVsockAgent(this.vsockPath, agentPortOf(this.spec.kernelArgs), options);
  }

  /**
   * Resolves with the first console line matching `pattern`, counting lines
   * already printed: a guest can print its start marker between
   * InstanceStart's answer and this call (Firecracker boots in about 100 ms).
   */
  waitForConsole(pattern: RegExp, timeoutMs: number): Promise<string> {
    const seen = this.vmm.consoleTap
      .lastLines(CONSOLE_LOOKBACK_LINES)
      .split('\n')
      .find((line) => pattern.test(line));
    if (seen !== undefined) return Promise.resolve(seen);
    return this.vmm.consoleTap.waitFor(pattern, timeoutMs);
  }

  consoleTail(lines = 20): string {
    return this.vmm.consoleTap.lastLines(lines);
  }

  /** The last lines of Firecracker's log file. */
  logTail(lines = 20): string {
    return readLogTail(this.vmm.logPath, lines);
  }

  /** The newest metrics line read so far (see flushMetrics). */
  get metrics(): FirecrackerMetrics | undefined {
    return this.vmm.metrics.latest();
  }

  /**
   * Asks Firecracker to write a metrics line now (FlushMetrics; only after
   * start or restore) and returns it, parsed. Counters are deltas since the
   * previous line. Throws FirecrackerApiError; undefined if the line did not
   * arrive within `timeoutMs`.
   */
  async flushMetrics(timeoutMs = 2_000): Promise<FirecrackerMetrics | undefined> {
    const before = this.vmm.metrics.received;
    await this.vmm.api.flushMetrics();
    return this.vmm.metrics.waitForLine(before, timeoutMs);
  }

  /**
   * SIGTERM, then SIGKILL after `graceMs`. Not SendCtrlAltDel: it exists on
   * x86 only, goes through the guest's i8042 driver (which boot levels trim
   * and some guests lack), and our guests are asked to shut down through
   * the agent before this is called anyway; Firecracker has no state to
   * save on exit, and SIGTERM ends it at once. Idempotent.
   */
  async shutdown(graceMs: number): Promise<ExitInfo> {
    const exit = await this.vmm.child.terminate(graceMs);
    this.vmm.api.close();
    await this.vmm.metrics.close();
    return exit;
  }

  private context(): ConfigContext {
    return {
      api: this.vmm.api,
      spec: this.spec,
      options: this.options,
      files: this.vmm.files,
      logLevel: this.settings.logLevel,
      metricsSink: this.settings.metricsSink,
      snapshotTimeoutMs: this.settings.snapshotTimeoutMs,
    };
  }

  private advance(what: string, from: Stage[], to: Stage): void {
    if (!from.includes(this.stage))
      throw new InvalidStateError(`cannot ${what} VM ${this.spec.vmId}: its Firecracker is ${this.stage} (this needs ${from.join(' or ')})`);
    this.stage = to;
  }

  private requireRunning(what: string): void {
    if (this.stage !== 'started' && this.stage !== 'loaded') {
      throw new InvalidStateError(`cannot ${what} VM ${this.spec.vmId}: its Firecracker is ${this.stage}, not started or restored`);
    }
  }
}

/**
 * Runs a configuration list and rethrows a failed step's own error (the
 * boot runner around us wraps it again as its `configure` step). A
 * refusal keeps the name of the configuration step in `details.step`, which
 * the API shows.
 */
async function runNamingStep(steps: StepList<ConfigContext>, ctx: ConfigContext): Promise<PhaseTiming[]> {
  try {
    return await steps.run(ctx);
  } catch (thrown) {
    if (!(thrown instanceof StepFailedError)) throw thrown;
    const err = thrown.cause;
    if (err instanceof TfcError && err.details) (err.details as Record<string, unknown>).step = thrown.step;
    throw err;
  }
}

/**
 * Moves a file the jailed VMM wrote out of the jail (rename, or copy across
 * filesystems). The jail is writable by the VM's uid, so what is there may
 * have been swapped by a compromised VMM: only a regular file with one link
 * is taken (never a symlink or a hard link to a file elsewhere).
 */
function moveOut(from: string, to: string): void {
  const refuse = () =>
    new VmmExitedError(`snapshot file ${from} written in the jail is not a plain file (a symlink or hard link?); refusing it: the VMM may be compromised`);
  if (!isPlainFile(from)) throw refuse();
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    copyFileSync(from, to, constants.COPYFILE_EXCL);
    rmSync(from, { force: true });
  }
  // Checked again where the VM uid can no longer swap it (the jail could between lstat and rename).
  if (!isPlainFile(to)) {
    rmSync(to, { force: true });
    throw refuse();
  }
}

function isPlainFile(path: string): boolean {
  const st = lstatSync(path);
  return st.isFile() && st.nlink === 1;
}
