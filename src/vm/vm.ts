import { join } from 'node:path';
import type { AgentClient, AgentHello, ExecRequest, ExecResult } from '../guest/agent-client.js';
import type { BuiltImage } from '../guest/image-store.js';
import { AgentError, InvalidArgumentError, InvalidStateError, TfcError } from '../errors/index.js';
import type { VmRepository } from '../store/index.js';
import { CleanupStack } from '../vmm/cleanup.js';
import type { SnapshotFiles, VmmDriver, VmmInstance } from '../vmm/driver.js';
import { coldBootSteps, restoreSteps, withNetwork, type BootContext } from './boot-steps.js';
import { parseIpv4, type EgressPolicy, type NetworkManager, type VmNetwork } from '../net/index.js';
import { VmStateMachine, type VmState } from './state-machine.js';
import type { PhaseTiming } from '../steps/index.js';

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
  repo: VmRepository;
  /** Keep guest RAM in this file so the VM can become a golden snapshot (see VmLaunchSpec). */
  snapshotMemoryPath?: string;
  /** Give the VM its own network (namespace, TAP, NAT) made by this manager. */
  network?: { manager: NetworkManager; policy?: EgressPolicy };
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

  private constructor(private readonly options: VmBootOptions) {
    this.id = options.id;
    this.profileName = options.profileName;
    this.driverName = options.driver.name;
    this.consoleLogPath = options.consoleLogPath;
    this.sm = new VmStateMachine(options.id, 'creating', (from, to, reason) => options.repo.transition(options.id, from, to, reason));
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
    const vm = new Vm(options);
    vm.phaseKind = kind;
    vm.sm.transition('booting', kind === 'restore' ? 'restoring from snapshot' : 'cold boot');
    const ctx: BootContext = {
      spec: {
        vmId: options.id,
        runDir: options.runDir,
        consoleLogPath: options.consoleLogPath,
        kernelPath: options.image.kernelPath,
        initrdPath: options.image.initrdPath,
        kernelArgs: options.kernelArgs,
        vcpus: options.vcpus,
        memoryMib: options.memoryMib,
        ...(options.snapshotMemoryPath ? { snapshotMemoryPath: options.snapshotMemoryPath } : {}),
        ...(options.snapshot ? { restoreFrom: options.snapshot } : {}),
      },
      driver: options.driver,
      cleanup: vm.cleanup,
      deadline: performance.now() + options.bootTimeoutMs,
      ...(options.network ? { network: options.network } : {}),
      onSpawned: (instance) => {
        vm.instance = instance;
        options.repo.update(options.id, { pid: instance.pid, accel: instance.accel });
      },
    };
    const base = kind === 'restore' ? restoreSteps() : coldBootSteps();
    const steps = options.network ? withNetwork(base) : base;
    try {
      vm.phases = await steps.run(ctx);
      vm.networkInfo = ctx.vmNetwork;
    } catch (err) {
      const phases = (err as { phases?: PhaseTiming[] }).phases ?? [];
      vm.phases = phases;
      options.repo.recordPhases(options.id, kind, phases);
      await vm.cleanup.run();
      const e = err instanceof TfcError ? err : null;
      options.repo.setError(options.id, e?.code ?? 'INTERNAL', (err as Error).message);
      vm.sm.transition('failed', `${kind} failed in ${(err as { failedStep?: string }).failedStep ?? 'unknown step'}`);
      throw err;
    }
    options.repo.recordPhases(options.id, kind, vm.phases);
    vm.agentClient = ctx.agent;
    vm.helloInfo = ctx.hello;
    vm.sm.transition('running', 'agent ready');
    void vm.instance!.wait().then(() => vm.onVmmExit());
    return vm;
  }

  /** The VM's network (host-side address, guest address), when it has one. */
  get network(): VmNetwork | undefined {
    return this.networkInfo;
  }

  /** "boot" for a cold-booted VM, "restore" for a clone. */
  get createdBy(): 'boot' | 'restore' {
    return this.phaseKind;
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
    this.helloInfo = await agent.hello({ timeoutMs });
    return this.helloInfo;
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
    await this.instance!.pause();
    this.sm.transition('paused');
  }

  async resume(): Promise<void> {
    this.sm.require('resume', ['paused']);
    await this.instance!.resume();
    this.sm.transition('running');
  }

  /**
   * Stops the VM and releases everything it holds: asks the agent to shut
   * the guest down, waits up to stopTimeoutMs, then tells the VMM to quit,
   * then kills it. Safe to call twice (the second call waits for the first);
   * a stopped VM stays stopped.
   */
  stop(reason = 'stop requested'): Promise<void> {
    if (this.sm.state === 'stopped') return Promise.resolve();
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    const wasRunning = this.sm.state === 'running';
    this.sm.transition('stopping', reason);
    const instance = this.instance;
    if (instance && !instance.exited) {
      const grace = this.options.stopTimeoutMs;
      if (this.agentClient && wasRunning) {
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
      await instance.shutdown(grace);
    }
    await this.cleanup.run();
    this.sm.transition('stopped', reason);
  }

  private onVmmExit(): void {
    if (this.sm.state === 'running' || this.sm.state === 'paused') {
      const message = `VMM exited unexpectedly; console log: ${this.consoleLogPath}`;
      this.options.repo.setError(this.id, 'VMM_EXITED', message);
      this.sm.transition('failed', 'VMM exited unexpectedly');
      void this.cleanup.run();
    }
  }
}

export function vmRunDir(runVmsDir: string, id: string): string {
  return join(runVmsDir, id);
}
