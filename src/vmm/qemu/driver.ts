import { chmodSync, chownSync, existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { connectUnix, type AgentClient } from '../../guest/agent-client.js';
import { InvalidArgumentError, InvalidStateError, VmmBinaryNotFoundError, VmmExitedError } from '../../errors/index.js';
import { findExecutable, netnsExecPrefix, runCommand, spawnSupervised, type ExitInfo, type SupervisedChild } from '../../process/index.js';
import type { CleanupStack } from '../../steps/index.js';
import { ConsoleTap } from '../console.js';
import type { AccelName, DriverInfo, LiveSnapshotPaths, SnapshotFiles, VmLaunchSpec, VmmDriver, VmmInstance } from '../driver.js';
import { loadFullState, loadState, saveState } from './migration.js';
import { chooseAccel, gatherAccelFacts, type AccelFacts, type AccelSetting } from './accel.js';
import { MIGRATE_IN_SOCKET, MIGRATE_OUT_SOCKET, QEMU_BASE_KERNEL_ARGS, buildQemuArgv, type QemuConfinement, type QemuTuning } from './argv.js';
import { QEMU_SANDBOX, type VmmPrivilege } from '../../security/index.js';
import { QmpClient } from './qmp-client.js';
import { qemuNetworkArgs } from './network-args.js';
import { checkSocketPaths, describeExit } from '../process-helpers.js';
import { VersionCache, VmmExec, reniceProcess, versionCacheFile, type VmmCommand, type VmmExecSettings } from '../../launcher/index.js';

export interface QemuDriverOptions {
  /** Config vmm.qemu.binary (env TFC_QEMU_BINARY). Default "qemu-system-x86_64". */
  binary: string;
  /** Config vmm.qemu.accel (env TFC_QEMU_ACCEL). Default "auto". */
  accel: AccelSetting;
  /** How long to wait for QMP after spawning. Default 10000. */
  spawnTimeoutMs?: number;
  /** Injected host facts, for tests. */
  accelFacts?: AccelFacts;
  /** TCG translation buffer and page merging (config vmm.qemu.tcg_tb_size_mib, mem_merge; docs/density.md). Default DEFAULT_QEMU_TUNING. */
  tuning?: QemuTuning;
  /**
   * Run each QEMU under -sandbox and as a uid of its own (config
   * security.drop_privileges; see src/security). Null/absent: QEMU runs as
   * this process's user without a sandbox.
   */
  privilege?: VmmPrivilege | null;
  /**
   * CPU priority and transparent huge pages of each QEMU process (config
   * vmm.nice, vmm.qemu.thp), applied by the tfc-vmm-exec launcher built in
   * `cacheDir`. Default: neither changed, no launcher.
   */
  exec?: VmmExecSettings;
  /** `<data_dir>/cache/vmm`: where the launcher is built and `--version` outputs are cached. Null/absent: nothing on disk (the version is cached in memory only, and a launcher cannot be built). */
  cacheDir?: string | null;
}

/** The QEMU `microvm` driver: real VMs under KVM where it works, TCG elsewhere. */
export class QemuDriver implements VmmDriver {
  readonly name = 'qemu' as const;
  private info: Promise<DriverInfo> | undefined;
  private readonly exec: VmmExec;
  private readonly versions: VersionCache;

  constructor(private readonly options: QemuDriverOptions) {
    this.exec = new VmmExec(options.exec ?? { nice: 0, disableThp: false }, options.cacheDir ?? null);
    this.versions = new VersionCache(options.cacheDir ? versionCacheFile(options.cacheDir) : null);
  }

  probe(): Promise<DriverInfo> {
    // The launcher's first build (a gcc run) overlaps the probe; it never throws.
    void this.exec.prepare();
    this.info ??= this.doProbe();
    this.info.catch(() => {
      this.info = undefined; // let a fixed host (package installed) be probed again
    });
    return this.info;
  }

  baseKernelArgs(): string {
    return QEMU_BASE_KERNEL_ARGS;
  }

  async spawn(spec: VmLaunchSpec, cleanup: CleanupStack): Promise<VmmInstance> {
    const info = await this.probe();
    const sockets = { qmp: join(spec.runDir, 'qmp.sock'), agent: join(spec.runDir, 'agent.sock') };
    const migrationSockets = [join(spec.runDir, MIGRATE_OUT_SOCKET), join(spec.runDir, MIGRATE_IN_SOCKET)];
    checkSocketPaths([...Object.values(sockets), ...migrationSockets]);
    if (spec.restoreFrom) {
      const from = spec.restoreFrom;
      for (const path of from.memoryInState ? [from.statePath] : [from.memoryPath, from.statePath]) {
        if (!existsSync(path)) throw new InvalidArgumentError(`snapshot file ${path} does not exist; recreate the snapshot`);
      }
    }
    for (const drive of spec.drives ?? []) {
      if (!existsSync(drive.path)) throw new InvalidArgumentError(`disk ${drive.id} file ${drive.path} does not exist`);
    }
    const confinement = this.confine(spec, cleanup);
    const consoleTap = new ConsoleTap(spec.consoleLogPath, { ...(spec.consoleLogMaxBytes ? { logMaxBytes: spec.consoleLogMaxBytes } : {}) });
    const argv = [...buildQemuArgv(spec, info.accel, sockets, confinement, this.options.tuning), ...(spec.network ? qemuNetworkArgs(spec.network) : [])];
    let child: SupervisedChild;
    let command: VmmCommand;
    try {
      // A networked VM's QEMU runs inside its namespace, where its TAP is.
      const [file, ...args] = spec.network ? [...netnsExecPrefix(spec.network.netns), info.binary, ...argv] : [info.binary, ...argv];
      // Through tfc-vmm-exec when vmm.nice or vmm.qemu.thp ask for it: it
      // execs in place, so the pid is QEMU's as without it.
      command = await this.exec.command(file, args);
      // The run dir is QEMU's working directory: migration sockets are named relative to it.
      // spawnSupervised starts QEMU behind a root guard that kills it when
      // this process dies (the kernel drops a parent-death signal armed on
      // QEMU itself at -runas); child.pid is still QEMU's own pid.
      child = await spawnSupervised(command.file, command.args, { cwd: spec.runDir });
      if (command.reniceTo !== null) reniceProcess(child.pid, command.reniceTo);
    } catch (err) {
      consoleTap.end('QEMU did not start');
      throw err;
    }
    cleanup.push('remove QEMU sockets', () => {
      for (const path of [...Object.values(sockets), ...migrationSockets]) rmSync(path, { force: true });
    });
    cleanup.push(`stop QEMU pid ${child.pid}`, () => child.terminate(1000));
    consoleTap.attach(child.stdout!);
    consoleTap.attach(child.stderr!, 'qemu: ');
    void child.wait().then((exit) => consoleTap.end(`QEMU exited (${describeExit(exit)})`));

    let qmp: QmpClient;
    try {
      qmp = await Promise.race([
        QmpClient.connect(sockets.qmp, { timeoutMs: this.options.spawnTimeoutMs ?? 10_000 }),
        child.wait().then((exit) => {
          throw new VmmExitedError(`QEMU exited during start-up (${describeExit(exit)}):\n${consoleTap.lastLines(10)}`);
        }),
      ]);
    } catch (err) {
      // Give the exit handler a moment so the message carries QEMU's own stderr.
      await Promise.race([child.wait(), new Promise((r) => setTimeout(r, 50))]);
      throw err;
    }
    cleanup.push('close QMP', () => qmp.close());
    // Without the launcher: again, now that QEMU has made its vCPU threads.
    if (command.reniceTo !== null) reniceProcess(child.pid, command.reniceTo);
    return new QemuInstance(child, qmp, consoleTap, info.accel, sockets.agent, spec, confinement);
  }

  /**
   * Leases the VM's uid (released by `cleanup`, after QEMU has exited) and
   * hands it the run dir, where QEMU, once unprivileged, binds nothing but
   * reaches the migration socket this process listens on. Null when
   * privileges are not dropped.
   */
  private confine(spec: VmLaunchSpec, cleanup: CleanupStack): QemuConfinement | null {
    const privilege = this.options.privilege;
    if (!privilege) return null;
    const lease = privilege.leases.acquire(spec.vmId);
    cleanup.push(`release VM uid ${lease.uid}`, () => lease.release());
    chownSync(spec.runDir, lease.uid, lease.gid);
    chmodSync(spec.runDir, 0o700);
    // QEMU opens its disks as root before -runas, but reopens a writable one
    // by name when the block layer changes its permissions (end of a
    // snapshot, start of a clone): the VM's own disks live in its run dir,
    // are its uid's, and are named relative to it (argv.ts qemuDrivePath).
    for (const drive of spec.drives ?? []) {
      if (drive.readOnly) continue;
      if (dirname(drive.path) !== spec.runDir) {
        throw new InvalidArgumentError(`writable disk ${drive.id} (${drive.path}) must be in the VM's run dir ${spec.runDir} when QEMU drops privileges`);
      }
      chownSync(drive.path, lease.uid, lease.gid);
    }
    return { uid: lease.uid, gid: lease.gid, sandbox: QEMU_SANDBOX };
  }

  private async doProbe(): Promise<DriverInfo> {
    const binary = findExecutable(this.options.binary);
    if (!binary) {
      throw new VmmBinaryNotFoundError(
        `QEMU binary "${this.options.binary}" not found; install it with \`apt-get install --no-install-recommends qemu-system-x86\` or set vmm.qemu.binary`,
      );
    }
    // Cached per binary file (path, size, mtime, inode): a one-shot `tfc vm run` skips the exec.
    const out = await this.versions.output(binary, async () => (await runCommand(binary, ['--version'], { timeoutMs: 10_000 })).stdout.toString());
    const version = parseQemuVersion(out);
    const choice = chooseAccel(this.options.accel, this.options.accelFacts ?? gatherAccelFacts());
    return { name: 'qemu', binary, version, accel: choice.accel, accelReason: choice.reason };
  }
}

/** `7.2.22` from `QEMU emulator version 7.2.22 (Debian ...)`; "unknown" when absent. Pure. */
export function parseQemuVersion(text: string): string {
  return /version\s+([0-9][^\s(]*)/.exec(text)?.[1] ?? 'unknown';
}

class QemuInstance implements VmmInstance {
  constructor(
    private readonly child: SupervisedChild,
    private readonly qmp: QmpClient,
    private readonly consoleTap: ConsoleTap,
    readonly accel: AccelName,
    private readonly agentSocket: string,
    private readonly spec: VmLaunchSpec,
    private readonly confinement: QemuConfinement | null,
  ) {}

  /** The uid QEMU runs as after start-up; null when privileges are not dropped. */
  get uid(): number | null {
    return this.confinement?.uid ?? null;
  }

  get pid(): number {
    return this.child.pid;
  }

  get exited(): boolean {
    return this.child.exited;
  }

  wait(): Promise<ExitInfo> {
    return this.child.wait();
  }

  async configure(): Promise<void> {
    // Everything is on the command line; confirm QEMU is parked before `cont`.
    const status = await this.qmp.execute<{ status: string }>('query-status');
    if (status.status !== 'prelaunch' && status.status !== 'paused') {
      throw new VmmExitedError(`QEMU is in state "${status.status}" before start; expected prelaunch`);
    }
  }

  async start(): Promise<void> {
    await this.qmp.execute('cont');
  }

  async createSnapshot(files: SnapshotFiles): Promise<void> {
    if (!this.spec.snapshotMemoryPath || files.memoryPath !== this.spec.snapshotMemoryPath) {
      throw new InvalidArgumentError(
        `QEMU snapshots need the VM booted with its RAM in the snapshot memory file (${files.memoryPath}); boot it with snapshotMemoryPath set to that path`,
      );
    }
    const status = await this.qmp.execute<{ status: string }>('query-status');
    if (status.status !== 'paused') {
      throw new InvalidStateError(`cannot snapshot VM ${this.spec.vmId}: QEMU reports it ${status.status} (snapshot needs paused)`);
    }
    await saveState(this.qmp, { dir: this.spec.runDir, name: MIGRATE_OUT_SOCKET, owner: this.confinement }, files.statePath);
  }

  /** A full migration (all RAM, no x-ignore-shared) of the paused VM to `statePath`; `cont` afterwards resumes it. No memory file. */
  async createLiveSnapshot({ statePath }: LiveSnapshotPaths): Promise<{ memoryPath?: string }> {
    const status = await this.qmp.execute<{ status: string }>('query-status');
    if (status.status !== 'paused') {
      throw new InvalidStateError(`cannot snapshot VM ${this.spec.vmId}: QEMU reports it ${status.status} (snapshot needs paused)`);
    }
    await saveState(this.qmp, { dir: this.spec.runDir, name: MIGRATE_OUT_SOCKET, owner: this.confinement }, statePath, 300_000, { ignoreShared: false });
    return {};
  }

  async loadSnapshot(): Promise<void> {
    const from = this.spec.restoreFrom;
    if (!from) throw new InvalidStateError(`VM ${this.spec.vmId} was not spawned for a restore (no restoreFrom)`);
    if (from.memoryInState) {
      await loadFullState(this.qmp, join(this.spec.runDir, MIGRATE_IN_SOCKET), from.statePath);
      return;
    }
    await loadState(this.qmp, join(this.spec.runDir, MIGRATE_IN_SOCKET), from.statePath);
  }

  async pause(): Promise<void> {
    await this.qmp.execute('stop');
  }

  async resume(): Promise<void> {
    await this.qmp.execute('cont');
  }

  connectAgent(options: { timeoutMs: number; signal?: AbortSignal }): Promise<AgentClient> {
    return connectUnix(this.agentSocket, options);
  }

  waitForConsole(pattern: RegExp, timeoutMs: number): Promise<string> {
    return this.consoleTap.waitFor(pattern, timeoutMs);
  }

  consoleTail(lines = 20): string {
    return this.consoleTap.lastLines(lines);
  }

  async shutdown(graceMs: number): Promise<ExitInfo> {
    if (this.child.exited) return this.child.wait();
    // `quit` may race with QEMU exiting on its own; either way we then wait.
    await this.qmp.execute('quit', undefined, { timeoutMs: graceMs }).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const exit = await this.child.wait();
    clearTimeout(timer);
    this.qmp.close();
    return exit;
  }
}
