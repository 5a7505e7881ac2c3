import type { AgentClient } from '../guest/agent-client.js';
import type { ExitInfo } from '../process/index.js';
import type { CleanupStack } from './cleanup.js';

export type DriverName = 'qemu' | 'firecracker';
export type AccelName = 'kvm' | 'tcg';

/** What a driver needs to start one VM. Paths must exist except the sockets it creates. */
export interface VmLaunchSpec {
  vmId: string;
  /** Per-VM directory for sockets and state; created and removed by the caller. */
  runDir: string;
  /** Serial console output is appended here. */
  consoleLogPath: string;
  kernelPath: string;
  initrdPath: string;
  /** Complete guest kernel command line (driver base args + profile args). */
  kernelArgs: string;
  vcpus: number;
  memoryMib: number;
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
