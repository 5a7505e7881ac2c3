import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentClient, AgentHello, ExecRequest, ExecResult } from '../guest/agent-client.js';
import type { GuestDirListing, GuestFileStat, ListDirOptions, MkdirOptions, RemoveOptions } from '../guest/agent-fs.js';
import type { BuiltImage } from '../guest/image-store.js';
import { AgentError, InvalidArgumentError, InvalidStateError, SnapshotUnsupportedError, StoreError, TfcError } from '../errors/index.js';
import type { VmRepository } from '../store/index.js';
import { CleanupStack } from '../steps/index.js';
import type { LiveSnapshotPaths, SnapshotFiles, VmLaunchSpec, VmmDriver, VmmInstance } from '../vmm/driver.js';
import { coldBootSteps, restoreSteps, withNetwork, withScratchDisk, withStandby, type AdoptedVmm, type BootContext } from './boot-steps.js';
import { copyScratchDisk, launchDrives } from './disks.js';
import { discardsStateOnStop, DISCARD_QUIT_GRACE_MS } from './stop-policy.js';
import { parseIpv4, type EgressPolicy, type NetworkManager, type VmNetwork } from '../net/index.js';
import { VmStateMachine, type VmState } from './state-machine.js';
import { StepFailedError, type PhaseTiming } from '../steps/index.js';
import type { ExitInfo } from '../process/index.js';

export interface VmBootOptions {
  id: string;
  profileName: string;
  driver: VmmDriver;
  image: BuiltImage;
  vcpus: number;
  memoryMib: number;
  /** Complete kernel command line. */
  kernelArgs: string;
  bootTimeoutMs: number;
  /** Config vmm.qemu.stop_timeout_ms: how long the guest gets to shut down before the VMM is told to quit, then killed. */
  stopTimeoutMs: number;
  runDir: string;
  consoleLogPath: string;
  /** Config vmm.console_log_max_bytes (the driver's default when absent). */
  consoleLogMaxBytes?: number;
  repo: VmRepository;
  /** Keep guest RAM in this file so the VM can become a golden snapshot (see VmLaunchSpec). */
  snapshotMemoryPath?: string;
  /** Give the VM its own network (namespace, TAP, NAT) made by this manager; `preferSubnet`: the subnet to take again when free. */
  network?: { manager: NetworkManager; policy?: EgressPolicy; preferSubnet?: string };
  /**
   * A writable scratch disk (profiles.X.disk_mib) at `path`, in the run dir
   * (removed with the VM). Cold boot formats it; a restore copies the
   * snapshot's (`snapshot.scratchDiskPath`). See docs/disks.md.
   */
  scratchDisk?: { path: string; sizeMib: number };
  /**
   * The VM's record exists already (stopped): a VM paused to disk coming
   * back under its own id. Its record goes back to `creating` instead of
   * being inserted.
   */
  revive?: boolean;
  /**
   * Restore only: adopt this VMM spawned ahead of time (src/vm/standby.ts)
   * instead of spawning one. `id`, `runDir`, `consoleLogPath` and
   * `scratchDisk` must be the ones it was made with; no `network`. The VM
   * takes over its undos, also when the restore fails.
   */
  standby?: AdoptedVmm;
  /** Told about every state change, after the store was (or failed to be) written (the daemon's event stream). Must not throw. */
  onStateChange?: (vmId: string, from: VmState, to: VmState, reason?: string) => void;
}

/**
 * The boot context a VM made from `options` starts from: its launch spec
 * (the VMM's command line is made from it), scratch disk, driver, deadline
 * and `cleanup`. Without the network and the pid recording, which Vm adds;
 * standby VMMs (src/vm/standby.ts) are spawned from the same context, so
 * their VMM is the one the VM would have spawned.
 */
export function bootContextFor(options: VmBootOptions & { snapshot?: SnapshotFiles }, cleanup: CleanupStack): BootContext {
  const scratch = options.scratchDisk;
  return {
    spec: {
      vmId: options.id,
      runDir: options.runDir,
      consoleLogPath: options.consoleLogPath,
      ...(options.consoleLogMaxBytes ? { consoleLogMaxBytes: options.consoleLogMaxBytes } : {}),
      kernelPath: options.image.kernelPath,
      initrdPath: options.image.initrdPath,
      kernelArgs: options.kernelArgs,
      vcpus: options.vcpus,
      memoryMib: options.memoryMib,
      ...(options.snapshotMemoryPath ? { snapshotMemoryPath: options.snapshotMemoryPath } : {}),
      ...(options.snapshot ? { restoreFrom: options.snapshot } : {}),
      ...(options.image.rootfsPath || scratch ? { drives: launchDrives(options.image.rootfsPath, scratch?.path) } : {}),
    },
    ...(scratch ? { scratchDisk: { ...scratch, ...(options.snapshot?.scratchDiskPath ? { copyFrom: options.snapshot.scratchDiskPath } : {}) } } : {}),
    driver: options.driver,
    cleanup,
    deadline: performance.now() + options.bootTimeoutMs,
  };
}

/**
 * One microVM: its lifecycle state (persisted on every change), its VMM
 * instance, its agent connection and everything to undo. Created only by
 * `Vm.boot`. Methods throw InvalidStateError when the state forbids them.
 */
export class Vm {
  readonly id: string;
  readonly profileName: string;
  readonly driverName: string;
  readonly consoleLogPath: string;
  private readonly sm: VmStateMachine;
  private readonly cleanup = new CleanupStack();
  private instance?: VmmInstance;
  private agentClient?: AgentClient;
  private helloInfo?: AgentHello;
  private phases: PhaseTiming[] = [];
  private stopping?: Promise<void>;
  private phaseKind: 'boot' | 'restore' = 'boot';
  private networkInfo?: VmNetwork;
  /** The launch spec of the current VMM (a rollback spawns the next one from it). */
  private launchSpec?: VmLaunchSpec;
  /** Undos of the current VMM (spawn_vmm's, then each rollback's); they also run as part of `cleanup`. */
  private generation?: CleanupStack;
  /** A snapshot or rollback in progress: they exclude each other. */
  private liveOp?: Promise<unknown>;
  private readonly failureListeners = new Set<(reason: string) => void>();

  private constructor(private readonly options: VmBootOptions) {
    this.id = options.id;
    this.profileName = options.profileName;
    this.driverName = options.driver.name;
    this.consoleLogPath = options.consoleLogPath;
    this.sm = new VmStateMachine(options.id, 'creating', (from, to, reason) => {
      try {
        options.repo.transition(options.id, from, to, reason);
      } finally {
        // The machine moved even when the store write failed: observers hear what happened.
        options.onStateChange?.(options.id, from, to, reason);
      }
    });
  }

  /**
   * Records the VM, then cold-boots it step by step until the agent answers.
   * On any failure everything created so far is undone, the VM is recorded
   * as failed with the error, and the error is rethrown (with `phases`).
   * With `snapshotMemoryPath` the VM can later become a golden snapshot.
   */
  static boot(options: VmBootOptions): Promise<Vm> {
    return Vm.start(options, 'boot');
  }

  /**
   * Creates the VM from a snapshot instead of booting a kernel (the restore
   * step list: fresh VMM, load, resume, agent, fresh clock and entropy).
   * `options.image` must be the image the snapshot was made from. Same
   * failure behaviour as `boot`. Phases are recorded with kind "restore".
   */
  static restore(options: VmBootOptions & { snapshot: SnapshotFiles }): Promise<Vm> {
    return Vm.start(options, 'restore');
  }

  private static async start(options: VmBootOptions & { snapshot?: SnapshotFiles }, kind: 'boot' | 'restore'): Promise<Vm> {
    if (options.standby && (kind !== 'restore' || options.network || options.standby.spec.vmId !== options.id)) {
      throw new InvalidArgumentError('a standby VMM serves only a restore without a network, under its own VM id');
    }
    if (kind === 'restore' && options.scratchDisk && !options.snapshot?.scratchDiskPath) {
      throw new InvalidArgumentError(
        `the snapshot has no scratch disk, but its clones need one (disk_mib ${options.scratchDisk.sizeMib}); recreate the snapshot`,
      );
    }
    // Order matters for store failures (STORE_ERROR): the first write happens
    // before anything exists, and every later write that fails still lets the
    // cleanup stack run, so no VMM, namespace, TAP or lease outlives a failure.
    if (options.revive) {
      const previous = options.repo.get(options.id);
      options.repo.claim(options.id);
      options.repo.transition(options.id, previous.state, 'creating', 'resumed from a pause to disk');
      options.onStateChange?.(options.id, previous.state as VmState, 'creating', 'resumed from a pause to disk');
    } else {
      options.repo.insert({
        id: options.id,
        driver: options.driver.name,
        profile: options.profileName,
        imageDigest: options.image.manifest.digest,
        state: 'creating',
        accel: null,
        vcpus: options.vcpus,
        memoryMib: options.memoryMib,
        pid: null,
        runDir: options.runDir,
        consoleLog: options.consoleLogPath,
      });
    }
    const vm = new Vm(options);
    vm.phaseKind = kind;
    const scratch = options.scratchDisk;
    try {
      vm.sm.transition('booting', kind === 'restore' ? `restoring from snapshot${options.standby ? ' (standby VMM)' : ''}` : 'cold boot');
    } catch (err) {
      // Nothing was created yet; the record stays "creating" if even this fails.
      ignoreStoreFailure(() => vm.sm.transition('failed', 'could not record the start of the boot'));
      throw err;
    }
    const ctx: BootContext = {
      ...bootContextFor(options, vm.cleanup),
      ...(options.network ? { network: options.network } : {}),
      // The VMM of a standby runs with the spec it was spawned with (same id and paths).
      ...(options.standby ? { spec: options.standby.spec, standby: options.standby } : {}),
      onSpawned: (instance) => {
        vm.instance = instance;
        options.repo.update(options.id, { pid: instance.pid, accel: instance.accel });
      },
    };
    const base = kind === 'restore' ? restoreSteps() : coldBootSteps();
    const disked = scratch ? withScratchDisk(base) : base;
    const networked = options.network ? withNetwork(disked) : disked;
    // A standby made the run dir and the disk, and spawned the VMM, ahead of time.
    const steps = options.standby ? withStandby(restoreSteps()) : networked;
    try {
      vm.phases = await steps.run(ctx);
      vm.networkInfo = ctx.vmNetwork;
      vm.launchSpec = ctx.spec;
      vm.generation = ctx.vmmCleanup;
    } catch (thrown) {
      // The runner wraps the step's error; callers and users see the step's
      // own error (VM_BOOT_TIMEOUT, VMM_EXITED, ...), not the wrapper.
      const failed = thrown instanceof StepFailedError ? thrown : null;
      const err = failed ? failed.cause : thrown;
      vm.phases = failed?.phases ?? [];
      // Undo first: recording the failure may fail too (disk full) and must not leak anything.
      await vm.cleanup.run();
      ignoreStoreFailure(() => options.repo.recordPhases(options.id, kind, vm.phases));
      ignoreStoreFailure(() =>
        options.repo.setError(options.id, err instanceof TfcError ? err.code : 'INTERNAL', err instanceof Error ? err.message : String(err)),
      );
      ignoreStoreFailure(() => vm.sm.transition('failed', `${kind} failed in ${failed?.step ?? 'unknown step'}`));
      throw err;
    }
    vm.agentClient = ctx.agent;
    vm.helloInfo = ctx.hello;
    try {
      options.repo.recordPhases(options.id, kind, vm.phases);
      vm.sm.transition('running', 'agent ready');
    } catch (err) {
      // A VM the store does not know as running would be invisible to
      // reconciliation: stop it rather than hand it out.
      await vm.cleanup.run();
      ignoreStoreFailure(() => vm.sm.transition('failed', `${kind} succeeded but could not be recorded`));
      if (!(err instanceof TfcError && err.code === 'STORE_ERROR')) throw err;
      throw new StoreError(`VM ${options.id} was ${kind === 'restore' ? 'restored' : 'booted'} but could not be recorded, so it was stopped: ${err.message}`, {
        cause: err,
        ...(err.details ? { details: err.details } : {}),
      });
    }
    vm.watchVmm(vm.instance!);
    vm.watchAgent(ctx.agent);
    return vm;
  }

  /** The VM dies when this VMM exits, unless a rollback replaced it first. */
  private watchVmm(instance: VmmInstance): void {
    const exited = (exit?: ExitInfo) => {
      if (this.instance === instance) this.onVmmExit(exit);
    };
    void instance.wait().then(exited, () => exited());
  }

  /** What a snapshot of this VM records to restore it later (src/snapshot/live). */
  get shape(): { image: BuiltImage; vcpus: number; memoryMib: number; kernelArgs: string; network: boolean; diskMib: number } {
    return {
      image: this.options.image,
      vcpus: this.options.vcpus,
      memoryMib: this.options.memoryMib,
      kernelArgs: this.options.kernelArgs,
      network: this.options.network !== undefined,
      diskMib: this.options.scratchDisk?.sizeMib ?? 0,
    };
  }

  /** Whether guest RAM is a memory backend named `mem` (golden clones, and VMs restored from their live snapshots). */
  get hasMemoryBackend(): boolean {
    const spec = this.launchSpec;
    if (!spec) return false;
    if (spec.restoreFrom?.memoryInState) return spec.restoreFrom.memoryInState.memoryBackend;
    return spec.restoreFrom !== undefined || spec.snapshotMemoryPath !== undefined;
  }

  /**
   * Snapshot of this running VM: pauses it, writes its RAM and device state
   * (QEMU: all in `paths.statePath`; Firecracker: memory in
   * `paths.memoryPath`), copies its scratch disk to `scratchCopyPath` when
   * it has one, then resumes it. Returns how long the guest was paused and
   * the memory file when the driver wrote one. Throws InvalidStateError
   * unless running (or while another snapshot or a rollback of this VM
   * runs), SnapshotUnsupportedError for a driver without live snapshots,
   * QmpError / FirecrackerApiError when the VMM fails it (the VM is resumed).
   */
  async liveSnapshot(paths: LiveSnapshotPaths, scratchCopyPath?: string): Promise<{ pauseMs: number; memoryPath?: string }> {
    this.sm.require('snapshot', ['running']);
    const instance = this.instance!;
    if (!instance.createLiveSnapshot) {
      throw new SnapshotUnsupportedError(`the ${this.driverName} driver cannot snapshot a running VM`);
    }
    return this.exclusive('snapshot', async () => {
      const started = performance.now();
      await instance.pause();
      let written: { memoryPath?: string };
      try {
        written = await instance.createLiveSnapshot!(paths);
        const scratch = this.options.scratchDisk?.path;
        if (scratch && scratchCopyPath) await copyScratchDisk(scratch, scratchCopyPath);
      } finally {
        // Resumed even when the snapshot failed: the VM keeps running either way.
        if (!instance.exited) await instance.resume();
      }
      return { pauseMs: performance.now() - started, ...written };
    });
  }

  /**
   * Puts this VM back into the state of `snapshot` (one of its own live
   * snapshots): stops its VMM, restores its scratch disk from the
   * snapshot's copy, spawns a new VMM with the same run dir, sockets and
   * network, loads the snapshot, resumes, reconnects the agent and gives
   * the guest the current time and fresh entropy. Same id, same address.
   * On failure the VM is marked failed and released (it has no VMM left).
   * Throws InvalidStateError unless running or paused.
   */
  async rollback(snapshot: SnapshotFiles): Promise<{ rollbackMs: number }> {
    this.sm.require('roll back', ['running', 'paused']);
    if (!this.launchSpec) throw new InvalidStateError(`VM ${this.id} has no launch spec to roll back with`);
    return this.exclusive('roll back', async () => {
      const started = performance.now();
      const wasPaused = this.sm.state === 'paused';
      const old = this.instance!;
      const previous = this.generation;
      const generation = new CleanupStack();
      this.generation = generation;
      this.cleanup.push('stop the VMM of a rollback', () => generation.run());
      // From here the old VMM exiting is expected: detach it first.
      this.instance = undefined;
      this.agentClient?.close();
      try {
        await old.shutdown(Math.min(this.options.stopTimeoutMs, 1000));
        await previous?.run();
        const scratch = this.options.scratchDisk?.path;
        if (scratch) {
          if (!snapshot.scratchDiskPath) throw new InvalidArgumentError('the snapshot has no copy of the scratch disk this VM has');
          rmSync(scratch, { force: true });
          await copyScratchDisk(snapshot.scratchDiskPath, scratch);
        }
        const spec: VmLaunchSpec = { ...this.launchSpec!, restoreFrom: snapshot };
        const instance = await this.options.driver.spawn(spec, generation);
        this.instance = instance;
        this.launchSpec = spec;
        this.options.repo.update(this.id, { pid: instance.pid, accel: instance.accel });
        await instance.loadSnapshot();
        await instance.resume();
        const timeoutMs = this.options.bootTimeoutMs;
        const agent = await instance.connectAgent({ timeoutMs });
        generation.push('close agent connection', () => agent.close());
        this.agentClient = agent;
        this.watchVmm(instance);
        this.watchAgent(agent);
        this.helloInfo = await agent.hello({ timeoutMs });
        await agent.setClock(Date.now(), { timeoutMs });
        await agent.addEntropy(randomBytes(64), { timeoutMs });
        if (wasPaused) await instance.pause();
      } catch (err) {
        const message = `rollback failed: ${err instanceof Error ? err.message : String(err)}`;
        if (this.sm.state === 'running' || this.sm.state === 'paused') {
          ignoreStoreFailure(() => this.options.repo.setError(this.id, err instanceof TfcError ? err.code : 'INTERNAL', message));
          ignoreStoreFailure(() => this.sm.transition('failed', message));
          await this.cleanup.run();
        }
        throw err;
      }
      return { rollbackMs: performance.now() - started };
    });
  }

  private requireNoLiveOp(what: string): void {
    if (this.liveOp) throw new InvalidStateError(`cannot ${what} VM ${this.id}: a snapshot or rollback of it is in progress`);
  }

  private async exclusive<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.requireNoLiveOp(what);
    const op = fn();
    this.liveOp = op;
    try {
      return await op;
    } finally {
      this.liveOp = undefined;
    }
  }

  /** The VM's network (host-side address, guest address), when it has one. */
  get network(): VmNetwork | undefined {
    return this.networkInfo;
  }

  /** The VM's scratch disk file (in its run dir, gone when it stops); undefined without one. */
  get scratchDiskPath(): string | undefined {
    return this.options.scratchDisk?.path;
  }

  /** "boot" for a cold-booted VM, "restore" for a clone. */
  get createdBy(): 'boot' | 'restore' {
    return this.phaseKind;
  }

  /** True for a clone that adopted a standby VMM instead of spawning one (docs/snapshots.md#standby-vmms). */
  get fromStandby(): boolean {
    return this.options.standby !== undefined;
  }

  /**
   * Writes a snapshot of this paused VM. After it the VM must be stopped
   * without resuming when clones will map its memory file. Throws
   * InvalidStateError unless paused.
   */
  async createSnapshot(files: SnapshotFiles): Promise<void> {
    this.sm.require('snapshot', ['paused']);
    await this.instance!.createSnapshot(files);
  }

  get state(): VmState {
    return this.sm.state;
  }

  get accel(): string {
    return this.instance?.accel ?? 'unknown';
  }

  get pid(): number | undefined {
    return this.instance?.pid;
  }

  /** Boot (or restore) phases in order; they add up to the time to agent-ready. */
  get bootPhases(): readonly PhaseTiming[] {
    return this.phases;
  }

  get hello(): AgentHello | undefined {
    return this.helloInfo;
  }

  /** Runs a command in the guest. Throws GuestCommandNotFoundError, AgentError, InvalidStateError. */
  async exec(request: ExecRequest): Promise<ExecResult> {
    this.sm.require('exec', ['running']);
    return this.agentClient!.exec(request);
  }

  async writeFile(path: string, data: Buffer | string, options: { mode?: number; append?: boolean; mkdirs?: boolean } = {}): Promise<void> {
    this.sm.require('write a file in', ['running']);
    await this.agentClient!.writeFile(path, data, options);
  }

  async readFile(path: string, options: { maxBytes?: number } = {}): Promise<Awaited<ReturnType<AgentClient['readFile']>>> {
    this.sm.require('read a file from', ['running']);
    return this.agentClient!.readFile(path, options);
  }

  /** Streams `source` into `path` in bounded chunks (AgentClient.writeFileFrom). Throws as writeFile, InvalidStateError. */
  async writeFileFrom(
    path: string,
    source: AsyncIterable<Buffer>,
    options: { mode?: number; mkdirs?: boolean; chunkBytes?: number } = {},
  ): Promise<{ bytes: number }> {
    this.sm.require('write a file in', ['running']);
    return this.agentClient!.writeFileFrom(path, source, options);
  }

  /** Reads `path` in bounded chunks (AgentClient.readFileChunks). Throws as readFile; InvalidStateError at once unless running. */
  readFileChunks(path: string, options: { chunkBytes?: number; maxBytes?: number } = {}): AsyncIterable<Buffer> {
    this.sm.require('read a file from', ['running']);
    return this.agentClient!.readFileChunks(path, options);
  }

  /** Lists a guest directory (AgentClient.listDir). Throws as listDir, InvalidStateError. */
  async listDir(path: string, options: ListDirOptions = {}): Promise<GuestDirListing> {
    this.sm.require('list a directory in', ['running']);
    return this.agentClient!.listDir(path, options);
  }

  /** lstat of a guest path (AgentClient.stat). Throws as stat, InvalidStateError. */
  async stat(path: string): Promise<GuestFileStat> {
    this.sm.require('stat a file in', ['running']);
    return this.agentClient!.stat(path);
  }

  /** Creates a guest directory (AgentClient.mkdir). Throws as mkdir, InvalidStateError. */
  async mkdir(path: string, options: MkdirOptions = {}): Promise<{ created: boolean }> {
    this.sm.require('create a directory in', ['running']);
    return this.agentClient!.mkdir(path, options);
  }

  /** Removes a guest path (AgentClient.remove). Throws as remove, InvalidStateError. */
  async remove(path: string, options: RemoveOptions = {}): Promise<{ removed: number }> {
    this.sm.require('remove a file in', ['running']);
    return this.agentClient!.remove(path, options);
  }

  /** The agent connection, for operations without a Vm wrapper (set_clock, add_entropy). Throws InvalidStateError unless running. */
  get agent(): AgentClient {
    this.sm.require('use the agent of', ['running']);
    return this.agentClient!;
  }

  /**
   * Drops the agent connection and opens a new one (what a snapshot clone
   * does through its new socket). The guest agent keeps serving across the
   * disconnect. Throws InvalidStateError unless running, AgentTimeoutError.
   */
  async reconnectAgent(timeoutMs = 10_000): Promise<AgentHello> {
    this.sm.require('reconnect the agent of', ['running']);
    this.agentClient?.close();
    const agent = await this.instance!.connectAgent({ timeoutMs });
    this.cleanup.push('close agent connection', () => agent.close());
    this.agentClient = agent;
    this.watchAgent(agent);
    this.helloInfo = await agent.hello({ timeoutMs });
    return this.helloInfo;
  }

  /**
   * Calls `listener` once with the reason when this VM dies on its own
   * after it was running (VMM exit: guest poweroff, kernel panic, VMM
   * killed; or a fatal agent protocol violation). Its resources are already
   * being released by then; the VM stays `failed`. Returns an unsubscribe.
   */
  onFailed(listener: (reason: string) => void): () => void {
    this.failureListeners.add(listener);
    return () => this.failureListeners.delete(listener);
  }

  /** A fatal protocol violation on the agent channel ends the VM like a VMM death (the guest is not trusted). */
  private watchAgent(agent: AgentClient | undefined): void {
    agent?.onFatal((err) => {
      // A connection replaced by reconnectAgent no longer speaks for the VM.
      if (this.agentClient === agent) this.die(err.code, `guest agent channel closed after a protocol violation: ${err.message}`);
    });
  }

  /**
   * Re-addresses the guest's eth0 through the agent (busybox `ip`): flush,
   * add `address/prefix`, default route via `gateway`. The host-side NAT
   * expects the guest at its link address (docs/networking.md), so this is
   * for repairs and special setups. Throws InvalidStateError unless running
   * and networked, InvalidArgumentError for malformed addresses, AgentError
   * with the guest's message when `ip` fails.
   */
  async configureGuestNetwork(link: { address: string; prefix: number; gateway: string }): Promise<void> {
    this.sm.require('configure the network of', ['running']);
    if (!this.networkInfo) throw new InvalidStateError(`VM ${this.id} has no network device (its profile has network = false)`);
    if (parseIpv4(link.address) === null || parseIpv4(link.gateway) === null || !Number.isInteger(link.prefix) || link.prefix < 1 || link.prefix > 32) {
      throw new InvalidArgumentError('guest network needs an IPv4 address, a prefix length 1..32 and an IPv4 gateway');
    }
    const script = 'ip addr flush dev eth0 && ip addr add "$1/$2" dev eth0 && ip link set eth0 up && ip route replace default via "$3"';
    const r = await this.agentClient!.exec({ argv: ['sh', '-c', script, 'tfc-net', link.address, String(link.prefix), link.gateway], timeoutMs: 10_000 });
    if (r.exitCode !== 0) throw new AgentError(`guest network configuration failed: ${r.stderr.toString().trim() || `exit ${r.exitCode}`}`);
  }

  async pause(): Promise<void> {
    this.sm.require('pause', ['running']);
    this.requireNoLiveOp('pause');
    await this.instance!.pause();
    this.sm.transition('paused');
  }

  async resume(): Promise<void> {
    this.sm.require('resume', ['paused']);
    this.requireNoLiveOp('resume');
    await this.instance!.resume();
    this.sm.transition('running');
  }

  /**
   * Stops the VM and releases everything it holds: asks the agent to shut
   * the guest down, waits up to stopTimeoutMs, then tells the VMM to quit,
   * then kills it; a VM whose state is all discarded (stop-policy.ts: clones,
   * cold boots that are no template) skips the guest's part and has its VMM
   * quit at once. Safe to call twice (the second call waits for the first);
   * a stopped VM stays stopped.
   */
  stop(reason = 'stop requested'): Promise<void> {
    if (this.sm.state === 'stopped') return Promise.resolve();
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    const wasRunning = this.sm.state === 'running';
    // A failed VM stays failed (its record says why); stopping it only releases what it holds.
    const record = this.sm.state !== 'failed';
    // A store failure must not stop the stop: the VMM, network and lease go
    // regardless, and the failure is reported once everything is released.
    const unrecorded: unknown[] = [];
    const write = (fn: () => void) => {
      try {
        fn();
      } catch (err) {
        unrecorded.push(err);
      }
    };
    if (record) write(() => this.sm.transition('stopping', reason));
    try {
      await this.stopVmm(wasRunning);
    } finally {
      await this.cleanup.run();
    }
    if (record) write(() => this.sm.transition('stopped', reason));
    if (unrecorded.length > 0) {
      const first = unrecorded[0];
      throw new StoreError(`VM ${this.id} was stopped and released everything it held, but ${first instanceof Error ? first.message : String(first)}`, {
        cause: first,
        details: { vm_id: this.id, ...(first instanceof TfcError ? first.details : {}) },
      });
    }
  }

  private async stopVmm(wasRunning: boolean): Promise<void> {
    const instance = this.instance;
    if (instance && !instance.exited) {
      const grace = this.options.stopTimeoutMs;
      // Nothing this guest wrote outlives it (stop-policy.ts): its power-off would only flush disks about to be removed.
      const discard = discardsStateOnStop(this.launchSpec);
      if (this.agentClient && wasRunning && !discard) {
        // A paused guest cannot shut itself down; the VMM quit below handles it.
        const asked = await this.agentClient.shutdown('reboot', { timeoutMs: Math.min(grace, 1000) }).then(
          () => true,
          () => false,
        );
        // Wait for the guest only if it accepted: a hung agent gets no grace period.
        if (asked) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([instance.wait(), new Promise((r) => (timer = setTimeout(r, grace)))]);
          clearTimeout(timer);
        }
      }
      await instance.shutdown(discard ? Math.min(grace, DISCARD_QUIT_GRACE_MS) : grace);
    }
  }

  /** The VMM process ended; only unexpected while running or paused. Never throws (it runs from a promise nobody awaits). */
  private onVmmExit(exit?: ExitInfo): void {
    const how = !exit
      ? 'the VMM exited'
      : exit.signal
        ? `the VMM was killed by ${exit.signal}`
        : exit.code === 0
          ? 'the VMM exited with code 0 (the guest powered off, or rebooted after a kernel panic)'
          : `the VMM exited with code ${exit.code}`;
    this.die('VMM_EXITED', `VM died while ${this.sm.state}: ${how}; console log: ${this.consoleLogPath}`);
  }

  /**
   * Marks a running or paused VM failed with why, releases everything it
   * holds and tells the onFailed listeners. The state changes even when the
   * store cannot record it (the in-memory state is what hands VMs out).
   * Never throws; a no-op in any other state.
   */
  private die(code: string, message: string): void {
    if (this.sm.state !== 'running' && this.sm.state !== 'paused') return;
    ignoreStoreFailure(() => this.options.repo.setError(this.id, code, message));
    ignoreStoreFailure(() => this.sm.transition('failed', message));
    void this.cleanup.run();
    for (const listener of [...this.failureListeners]) {
      try {
        listener(message);
      } catch {
        // a listener's bug must not keep the others from hearing it
      }
    }
    this.failureListeners.clear();
  }
}

/**
 * Runs a store write whose failure cannot be reported anywhere better than
 * the error already on its way (a failed boot, a dead VM); the in-memory
 * state stays right either way.
 */
function ignoreStoreFailure(write: () => void): void {
  try {
    write();
  } catch {
    // see above
  }
}

export function vmRunDir(runVmsDir: string, id: string): string {
  return join(runVmsDir, id);
}
