/**
 * Test support (not shipped behaviour): a VMM driver with no VMM. Its "VM"
 * is the real guest agent (src/agent, compiled for the host) serving on a
 * Unix socket, so Vm, VmService, pools and the API run their real code
 * paths (boot steps, agent protocol, cleanup, store) in milliseconds, and
 * faults a real VMM rarely shows on demand: a spawn that fails, a guest
 * that never boots, a VMM that dies while booting or running. Commands run
 * on the host as the test user. Must not be imported by product code.
 */
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VmmExitedError, VmmSpawnFailedError, VmBootTimeoutError } from '../errors/index.js';
import { connectUnix, type AgentClient } from '../guest/agent-client.js';
import { INIT_START_MARKER } from '../guest/init-script.js';
import { spawnSupervised, type ExitInfo, type SupervisedChild } from '../process/index.js';
import type { CleanupStack } from '../steps/index.js';
import type { DriverInfo, SnapshotFiles, VmLaunchSpec, VmmDriver, VmmInstance } from '../vmm/driver.js';

/** Faults to inject, per spawn (read when a VM is spawned). */
export interface FakeFaults {
  /** spawn() throws VMM_SPAWN_FAILED. */
  spawnFails?: boolean;
  /** The guest never prints the init marker (kernel step times out). */
  kernelHangs?: boolean;
  /** The "VMM" exits right after start, before the agent answers. */
  exitsDuringBoot?: boolean;
}

export class FakeDriver implements VmmDriver {
  readonly name = 'qemu' as const;
  faults: FakeFaults = {};
  readonly instances: FakeInstance[] = [];

  /** `agentBinary`: the agent compiled for this host (see buildAgent). */
  constructor(private readonly agentBinary: string) {}

  async probe(): Promise<DriverInfo> {
    return { name: 'qemu', binary: this.agentBinary, version: '0.0.0-fake', accel: 'tcg', accelReason: 'fake driver for tests' };
  }

  baseKernelArgs(): string {
    return 'console=fake';
  }

  async spawn(spec: VmLaunchSpec, cleanup: CleanupStack): Promise<VmmInstance> {
    const faults = { ...this.faults };
    if (faults.spawnFails) throw new VmmSpawnFailedError('fake VMM refused to start (injected fault)');
    const socketPath = join(spec.runDir, 'agent.sock');
    const child = await spawnSupervised(this.agentBinary, ['--unix', socketPath], { stdout: 'ignore' });
    cleanup.push(`kill fake VMM ${child.pid}`, () => child.terminate(1000));
    const instance = new FakeInstance(child, spec, socketPath, faults);
    this.instances.push(instance);
    return instance;
  }
}

export class FakeInstance implements VmmInstance {
  readonly accel = 'tcg' as const;
  private console: string[] = [];
  paused = false;
  snapshots: SnapshotFiles[] = [];

  constructor(
    readonly child: SupervisedChild,
    private readonly spec: VmLaunchSpec,
    private readonly socketPath: string,
    private readonly faults: FakeFaults,
  ) {
    child.stderr?.on('data', (c: Buffer) => {
      for (const line of c.toString().split('\n').filter(Boolean)) this.log(line);
    });
  }

  get pid(): number {
    return this.child.pid;
  }

  get exited(): boolean {
    return this.child.exited;
  }

  private log(line: string): void {
    this.console.push(line);
    if (this.console.length > 200) this.console.shift();
    try {
      appendFileSync(this.spec.consoleLogPath, line + '\n');
    } catch {
      // The test's data dir may already be gone while the agent prints its last lines.
    }
  }

  async configure(): Promise<void> {}

  async start(): Promise<void> {
    if (this.faults.exitsDuringBoot) {
      this.child.kill('SIGKILL');
      return;
    }
    if (!this.faults.kernelHangs) this.log(INIT_START_MARKER);
  }

  async pause(): Promise<void> {
    this.paused = true;
  }

  async resume(): Promise<void> {
    this.paused = false;
  }

  async createSnapshot(files: SnapshotFiles): Promise<void> {
    if (!this.paused) throw new Error('snapshot of a running VM');
    // What a VMM leaves: a device state file, and the memory file (QEMU's is the RAM file itself).
    writeFileSync(files.statePath, `fake state of ${this.spec.vmId}\n`);
    if (!existsSync(files.memoryPath)) writeFileSync(files.memoryPath, Buffer.alloc(4096));
    this.snapshots.push(files);
  }

  async loadSnapshot(): Promise<void> {
    if (!this.spec.restoreFrom || !existsSync(this.spec.restoreFrom.statePath)) throw new VmmExitedError('fake VMM: no snapshot to load');
    this.log(INIT_START_MARKER);
  }

  connectAgent(options: { timeoutMs: number; signal?: AbortSignal }): Promise<AgentClient> {
    return connectUnix(this.socketPath, options);
  }

  async waitForConsole(pattern: RegExp, timeoutMs: number): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const line = this.console.find((l) => pattern.test(l));
      if (line) return line;
      if (this.child.exited) throw new VmmExitedError(`fake VMM exited before ${pattern}`);
      if (Date.now() >= end) throw new VmBootTimeoutError(`fake guest did not print ${pattern} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  consoleTail(lines = 15): string {
    return this.console.slice(-lines).join('\n');
  }

  shutdown(graceMs: number): Promise<ExitInfo> {
    return this.child.terminate(graceMs);
  }

  wait(): Promise<ExitInfo> {
    return this.child.wait();
  }
}
