/**
 * Host-side helpers for the agent's background processes (AgentClient.spawn
 * and friends): argument checks before anything is sent, the conversion of
 * results, event frame validation, and the listener set that process events
 * are delivered to.
 *
 * Events are delivered synchronously, one at a time, as frames are decoded:
 * nothing is queued here, so a slow listener slows the socket reader (and
 * through it the guest), never the host's memory. No I/O here.
 */
import { AgentProtocolError, InvalidArgumentError } from '../errors/index.js';
import {
  AGENT_PROTOCOL_VERSION,
  EVENT_FRAME_MAX_BYTES,
  PROC_OUTPUT_EVENT_MAX_BYTES,
  PTY_MAX_SIZE,
  wireBytes,
  type ProcListResult,
  type SpawnParams,
} from './agent-protocol.js';
import type { AgentProcessEvent, AgentProcessInfo, ProcessSignal, SpawnRequest } from './agent-types.js';

export const PROCESS_SIGNALS: readonly ProcessSignal[] = [
  'SIGINT',
  'SIGTERM',
  'SIGKILL',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGSTOP',
  'SIGCONT',
  'SIGWINCH',
];

function checkSize(what: string, value: unknown): number {
  if (!(Number.isSafeInteger(value) && (value as number) >= 1 && (value as number) <= PTY_MAX_SIZE)) {
    throw new InvalidArgumentError(`${what} must be an integer between 1 and ${PTY_MAX_SIZE}, got ${String(value)}`);
  }
  return value as number;
}

/** A guest pid: what spawn returned. Throws InvalidArgumentError otherwise. */
export function checkPid(pid: unknown): number {
  if (!(Number.isSafeInteger(pid) && (pid as number) >= 1 && (pid as number) <= 0x7fff_ffff)) {
    throw new InvalidArgumentError(`pid must be a positive integer, got ${String(pid)}`);
  }
  return pid as number;
}

/** The wire parameters of a spawn. Throws InvalidArgumentError for a bad argv or pty size. */
export function spawnParams(request: SpawnRequest): SpawnParams {
  const { argv } = request;
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string') || argv[0] === '') {
    throw new InvalidArgumentError('spawn argv must be a non-empty array of strings with a non-empty argv[0]');
  }
  return {
    argv: [...argv],
    ...(request.env !== undefined && { env: { ...request.env } }),
    ...(request.cwd !== undefined && { cwd: request.cwd }),
    ...(request.pty !== undefined && { pty: { cols: checkSize('pty cols', request.pty.cols), rows: checkSize('pty rows', request.pty.rows) } }),
  };
}

/** Throws InvalidArgumentError unless cols and rows are 1..PTY_MAX_SIZE. */
export function checkPtySize(cols: number, rows: number): void {
  checkSize('cols', cols);
  checkSize('rows', rows);
}

/** Throws InvalidArgumentError for a signal the agent does not send. */
export function checkSignal(signal: unknown): ProcessSignal {
  if (!(PROCESS_SIGNALS as readonly unknown[]).includes(signal)) {
    throw new InvalidArgumentError(`signal must be one of ${PROCESS_SIGNALS.join(', ')}, got ${String(signal)}`);
  }
  return signal as ProcessSignal;
}

export function toProcessInfos(r: ProcListResult): AgentProcessInfo[] {
  return r.processes.map((p) => ({
    pid: p.pid,
    argv: p.argv,
    pty: p.pty,
    running: p.running,
    exitCode: p.exit_code,
    signal: p.signal,
    startedUptimeMs: p.started_uptime_ms,
  }));
}

/** The listeners of one connection's process events. */
export class ProcessEventHub {
  private readonly listeners = new Set<(event: AgentProcessEvent) => void>();

  /** Adds `listener`; returns the function that removes it (safe to call twice). */
  subscribe(listener: (event: AgentProcessEvent) => void): () => void {
    // A wrapper per subscription: the same function subscribed twice gets two independent unsubscribes.
    const entry = (event: AgentProcessEvent) => listener(event);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  /** Calls every listener with `event`; a listener that throws does not stop the others. */
  emit(event: AgentProcessEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch {
        // listeners must not throw; one that does must not break the channel
      }
    }
  }

  get size(): number {
    return this.listeners.size;
  }
}

const SIGNAL_NAME = /^SIG[A-Z0-9]{1,12}$/;

/**
 * Checks and converts an event frame (a message with an `event` member).
 * `frameBytes` is the frame's length: an event larger than
 * EVENT_FRAME_MAX_BYTES is refused even when a larger reply was allowed
 * next. Throws AgentProtocolError for an unknown event, a missing or
 * mistyped member, more than PROC_OUTPUT_EVENT_MAX_BYTES of data, or
 * another protocol version: all fatal for the channel.
 */
export function parseEvent(message: Record<string, unknown>, frameBytes: number): AgentProcessEvent {
  const { v, event, pid } = message;
  if (v !== AGENT_PROTOCOL_VERSION) {
    throw new AgentProtocolError(
      `agent sent an event in protocol version ${String(v)}; this host speaks version ${AGENT_PROTOCOL_VERSION}: rebuild the guest image`,
      {
        details: { version: v },
      },
    );
  }
  if (frameBytes > EVENT_FRAME_MAX_BYTES) {
    throw new AgentProtocolError(`agent sent an event frame of ${frameBytes} bytes, more than the ${EVENT_FRAME_MAX_BYTES}-byte limit for events`, {
      details: { frame_bytes: frameBytes, max_frame_bytes: EVENT_FRAME_MAX_BYTES },
    });
  }
  const bad = (what: string) =>
    new AgentProtocolError(`agent sent a malformed ${String(event).slice(0, 32)} event: ${what}`, { details: { event: String(event).slice(0, 32) } });
  if (!Number.isSafeInteger(pid) || (pid as number) <= 0) throw bad("invalid 'pid'");
  if (event === 'output') {
    const { stream, data_b64: raw } = message;
    if (stream !== 'stdout' && stream !== 'stderr') throw bad("'stream' must be stdout or stderr");
    if (!(typeof raw === 'string' || Buffer.isBuffer(raw))) throw bad("invalid 'data_b64'");
    const data = wireBytes(raw);
    if (data.length > PROC_OUTPUT_EVENT_MAX_BYTES) throw bad(`${data.length} bytes of data (at most ${PROC_OUTPUT_EVENT_MAX_BYTES})`);
    return { type: stream, pid: pid as number, data };
  }
  if (event === 'exit') {
    const { exit_code: exitCode, signal, duration_ms: durationMs } = message;
    if (!(exitCode === null || Number.isSafeInteger(exitCode))) throw bad("invalid 'exit_code'");
    if (!(signal === null || (typeof signal === 'string' && SIGNAL_NAME.test(signal)))) throw bad("invalid 'signal'");
    if (!(Number.isSafeInteger(durationMs) && (durationMs as number) >= 0)) throw bad("invalid 'duration_ms'");
    return { type: 'exit', pid: pid as number, exitCode: exitCode as number | null, signal: signal as string | null, durationMs: durationMs as number };
  }
  throw new AgentProtocolError(`agent sent an unknown event ${JSON.stringify(String(event).slice(0, 32))}`, { details: { event: String(event).slice(0, 32) } });
}
