/**
 * The CLI side of a streamed guest process (`tfc vm exec`, `tfc vm shell`):
 * follow its output over SSE (reconnecting with Last-Event-ID when the
 * connection drops, so nothing is printed twice), forward local input to
 * its stdin with at most one request in flight and a bounded buffer, and
 * turn its exit into an exit code.
 */
import { TfcError } from '../errors/index.js';
import type { TfcClient } from '../client/index.js';

export interface ProcessExit {
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
}

const SIGNAL_NUMBERS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

/** The shell convention: the exit code, or 128 + the signal number (137 for an unknown signal). */
export function exitCodeOf(exit: ProcessExit): number {
  if (exit.exitCode !== null) return exit.exitCode;
  return 128 + (SIGNAL_NUMBERS[exit.signal ?? ''] ?? 9);
}

export interface FollowOptions {
  /** Writes output; a returned promise is awaited before reading on (back-pressure: the daemon's log, not this process, holds what is unread). */
  onOutput(stream: 'stdout' | 'stderr', data: Buffer): void | Promise<void>;
  /** Told when output was lost because this reader fell behind the daemon's log. */
  onGap?(lostBytes: number): void;
  signal?: AbortSignal;
}

/**
 * Streams the output of process `pid` until its exit event; resolves with
 * the exit. Output arrives as base64 so bytes pass unchanged; the client's
 * iterator resumes dropped connections with Last-Event-ID. Throws the
 * daemon's error (PROCESS_NOT_FOUND when the VM went away), or
 * DAEMON_UNAVAILABLE after repeated dropped connections.
 */
export async function followProcess(client: TfcClient, vmId: string, pid: number, options: FollowOptions): Promise<ProcessExit> {
  for await (const e of client.output(vmId, pid, { encoding: 'base64', ...(options.signal ? { signal: options.signal } : {}) })) {
    if (e.type === 'stdout' || e.type === 'stderr') await options.onOutput(e.type, Buffer.from(e.data, 'base64'));
    else if (e.type === 'gap') options.onGap?.(e.lost_bytes);
    else if (e.type === 'exit') return { exitCode: e.exit_code, signal: e.signal, durationMs: e.duration_ms };
  }
  throw new TfcError('DAEMON_UNAVAILABLE', `the output stream of process ${pid} ended without its exit event`);
}

/** Input bytes held while a stdin request is in flight; beyond this the source is paused. */
export const STDIN_BUFFER_BYTES = 1024 * 1024;
/** Largest stdin request (the daemon takes at most 1 MiB). */
const STDIN_REQUEST_BYTES = 256 * 1024;
const STDIN_BUSY_RETRY_MS = 50;

/**
 * Sends bytes to a process's stdin: writes coalesce while a request is in
 * flight (at most one at a time, at most STDIN_BUFFER_BYTES held: `push`
 * answers false when the caller should pause), `end` sends EOF after what
 * is buffered. A VM_BUSY answer (the guest's stdin queue is full) is
 * retried; other errors are kept and reported by `done`.
 */
export class StdinForwarder {
  private buffer: Buffer[] = [];
  private buffered = 0;
  private inFlight = false;
  private eof = false;
  private sentEof = false;
  private closed = false;
  private failure?: unknown;
  private idle: Array<() => void> = [];
  private drained: Array<() => void> = [];

  constructor(
    private readonly client: TfcClient,
    private readonly vmId: string,
    private readonly pid: number,
  ) {}

  /** Queues `data`; false when the buffer is full (pause the source until `whenDrained`). */
  push(data: Buffer): boolean {
    if (this.eof || this.closed) return true;
    this.buffer.push(data);
    this.buffered += data.length;
    this.pump();
    return this.buffered < STDIN_BUFFER_BYTES;
  }

  /** Resolves once the buffer is below its bound again. */
  whenDrained(): Promise<void> {
    if (this.buffered < STDIN_BUFFER_BYTES || this.closed) return Promise.resolve();
    return new Promise((r) => this.drained.push(r));
  }

  /** Sends EOF after the buffered bytes. */
  end(): void {
    if (this.eof) return;
    this.eof = true;
    this.pump();
  }

  /** Stops sending (the process exited). */
  close(): void {
    this.closed = true;
    this.buffer = [];
    this.buffered = 0;
    this.wake();
  }

  /** Resolves when everything pushed was sent (or the forwarder closed); rejects with the first failure. */
  async done(): Promise<void> {
    if (this.inFlight || (this.buffered > 0 && !this.closed)) await new Promise<void>((r) => this.idle.push(r));
    if (this.failure) throw this.failure;
  }

  private wake(): void {
    if (this.buffered < STDIN_BUFFER_BYTES) for (const r of this.drained.splice(0)) r();
    if (!this.inFlight && (this.buffered === 0 || this.closed)) for (const r of this.idle.splice(0)) r();
  }

  private pump(): void {
    if (this.inFlight || this.closed || this.failure) return;
    if (this.buffered === 0 && !(this.eof && !this.sentEof)) return this.wake();
    const all = Buffer.concat(this.buffer);
    const chunk = all.subarray(0, STDIN_REQUEST_BYTES);
    const rest = all.subarray(chunk.length);
    this.buffer = rest.length ? [rest] : [];
    this.buffered = rest.length;
    const eof = this.eof && rest.length === 0;
    this.inFlight = true;
    void this.send(chunk, eof).then(
      () => {
        if (eof) this.sentEof = true;
        this.inFlight = false;
        this.wake();
        this.pump();
      },
      (err: unknown) => {
        this.inFlight = false;
        // The process may have exited meanwhile: its stdin no longer matters.
        if (!(err instanceof TfcError && (err.code === 'INVALID_STATE' || err.code === 'PROCESS_NOT_FOUND'))) this.failure = err;
        this.closed = true;
        this.wake();
      },
    );
  }

  private async send(chunk: Buffer, eof: boolean): Promise<void> {
    for (;;) {
      try {
        await this.client.writeStdin(this.vmId, this.pid, chunk, { eof });
        return;
      } catch (err) {
        if (!(err instanceof TfcError && err.code === 'VM_BUSY') || this.closed) throw err;
        await new Promise((r) => setTimeout(r, STDIN_BUSY_RETRY_MS));
      }
    }
  }
}
