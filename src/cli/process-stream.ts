/**
 * The CLI side of a streamed guest process (`tfc vm exec`, `tfc vm shell`):
 * follow its output over SSE (reconnecting with Last-Event-ID when the
 * connection drops, so nothing is printed twice), forward local input to
 * its stdin with at most one request in flight and a bounded buffer, and
 * turn its exit into an exit code.
 */
import { TfcError, hasCode, isErrorCode } from '../errors/index.js';
import type { ApiClient } from './api-client.js';

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

export function processPath(vmId: string, pid?: number, rest = ''): string {
  return `/v1/vms/${encodeURIComponent(vmId)}/processes${pid === undefined ? '' : `/${pid}${rest}`}`;
}

/** Reconnects after a dropped stream this many times in a row (with a short pause) before giving up. */
const MAX_RECONNECTS = 5;
const RECONNECT_PAUSE_MS = 200;

export interface FollowOptions {
  /** Writes output; a returned promise is awaited before reading on (back-pressure: the daemon's log, not this process, holds what is unread). */
  onOutput(stream: 'stdout' | 'stderr', data: Buffer): void | Promise<void>;
  /** Told when output was lost because this reader fell behind the daemon's log. */
  onGap?(lostBytes: number): void;
  signal?: AbortSignal;
}

/**
 * Streams the output of process `pid` until its exit event; resolves with
 * the exit. Output arrives as base64 so bytes pass unchanged. Throws the
 * daemon's error (PROCESS_NOT_FOUND when the VM went away), or
 * DAEMON_UNAVAILABLE after repeated dropped connections.
 */
export async function followProcess(client: ApiClient, vmId: string, pid: number, options: FollowOptions): Promise<ProcessExit> {
  let lastId = 0;
  let failures = 0;
  let lastError: unknown;
  for (;;) {
    try {
      const events = await client.events(`${processPath(vmId, pid, '/output')}?encoding=base64`, {
        lastEventId: lastId,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      for await (const m of events) {
        failures = 0;
        if (m.id !== undefined) lastId = m.id;
        const data = JSON.parse(m.data) as Record<string, unknown>;
        if (m.event === 'stdout' || m.event === 'stderr') await options.onOutput(m.event, Buffer.from(String(data.data), 'base64'));
        else if (m.event === 'gap') options.onGap?.(Number(data.lost_bytes));
        else if (m.event === 'exit') {
          return { exitCode: data.exit_code as number | null, signal: data.signal as string | null, durationMs: Number(data.duration_ms) };
        } else if (m.event === 'error') {
          const code = isErrorCode(data.code) ? data.code : 'INTERNAL';
          throw new TfcError(code, String(data.message));
        }
      }
    } catch (err) {
      // The daemon's own answers (unknown process, VM gone) are final; a cut connection is retried.
      if (options.signal?.aborted || (err instanceof TfcError && !hasCode(err, 'DAEMON_UNAVAILABLE'))) throw err;
      lastError = err;
    }
    if (++failures > MAX_RECONNECTS) {
      throw new TfcError('DAEMON_UNAVAILABLE', `the output stream of process ${pid} kept ending before the process exited (${MAX_RECONNECTS} reconnects)`, {
        ...(lastError !== undefined ? { cause: lastError } : {}),
      });
    }
    await new Promise((r) => setTimeout(r, RECONNECT_PAUSE_MS));
  }
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
    private readonly client: ApiClient,
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
        await this.client.request('POST', processPath(this.vmId, this.pid, '/stdin'), {
          data: chunk.toString('base64'),
          encoding: 'base64',
          ...(eof ? { eof: true } : {}),
        });
        return;
      } catch (err) {
        if (!(err instanceof TfcError && err.code === 'VM_BUSY') || this.closed) throw err;
        await new Promise((r) => setTimeout(r, STDIN_BUSY_RETRY_MS));
      }
    }
  }
}
