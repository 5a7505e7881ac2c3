/**
 * What the process registry needs from a VM and its guest agent: the
 * streaming-process part of AgentClient (src/guest/agent-client.ts), as a
 * narrow structural interface so the registry can be tested without VMs and
 * never reaches into anything else. Types only.
 */

import type { ProcessSignal } from '../guest/agent-types.js';

// One list of signals: the agent client's (the registry checks requests against it).
export { PROCESS_SIGNALS } from '../guest/agent-processes.js';
export type { ProcessSignal };

export interface ProcessSpawnRequest {
  argv: readonly string[];
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  pty?: { cols: number; rows: number };
}

export type ProcessAgentEvent =
  { type: 'stdout' | 'stderr'; pid: number; data: Buffer } | { type: 'exit'; pid: number; exitCode: number | null; signal: string | null; durationMs: number };

interface CallOptions {
  timeoutMs?: number;
}

/** The streaming-process calls of the guest agent client (AgentClient implements them). */
export interface ProcessAgent {
  readonly supportsProcesses: boolean;
  /** True once the connection is closed (the VM stopped, or the client was replaced). */
  readonly closed: boolean;
  spawn(request: ProcessSpawnRequest, options?: CallOptions): Promise<{ pid: number }>;
  writeStdin(pid: number, data: Buffer, options?: CallOptions & { eof?: boolean }): Promise<{ bytesAccepted: number }>;
  closeStdin(pid: number, options?: CallOptions): Promise<void>;
  signalProcess(pid: number, signal: ProcessSignal, options?: CallOptions): Promise<void>;
  resizePty(pid: number, cols: number, rows: number, options?: CallOptions): Promise<void>;
  onProcessEvent(listener: (event: ProcessAgentEvent) => void): () => void;
}

/** A VM as the registry sees it (Vm implements it): `agent` throws unless the VM is running. */
export interface ProcessVm {
  readonly id: string;
  readonly agent: ProcessAgent;
  onFailed?(listener: (reason: string) => void): () => void;
}
