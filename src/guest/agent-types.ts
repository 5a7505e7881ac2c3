/**
 * The public shapes of the host-side agent API (AgentClient): call options,
 * requests and results in camelCase. Types only: the wire types are in
 * agent-protocol.ts, the behaviour in agent-client.ts, which re-exports these.
 */
import type { AgentTransport } from './agent-protocol.js';

export interface AgentCallOptions {
  /** Give up waiting for the reply after this long (AgentTimeoutError). Default: the client's default. */
  timeoutMs?: number;
  /** Aborting rejects the call with `signal.reason`; the agent still runs the request. */
  signal?: AbortSignal;
}

export interface AgentClientOptions {
  /** Request timeout for calls that give none. Default DEFAULT_REQUEST_TIMEOUT_MS. */
  defaultTimeoutMs?: number;
}

export interface AgentHello {
  agentVersion: string;
  protocol: number;
  transport: AgentTransport;
  pid: number;
  kernelRelease: string;
  /** Guest uptime when the agent's transport became ready: the "agent ready" boot phase. */
  readyUptimeMs: number;
  uptimeMs: number;
  /** What the agent can do beyond the base ops, e.g. "processes", "pty" (empty for older agents). */
  features: string[];
}

/** A background process (AgentClient.spawn). Same argv, env and cwd rules as ExecRequest. */
export interface SpawnRequest {
  argv: readonly string[];
  /** Added to the base environment; TERM is "dumb" without a pty, "xterm-256color" with one. */
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  /** Run on a pseudo-terminal of this size (1..1000 each): one output stream, "stdout". Default: pipes. */
  pty?: { cols: number; rows: number };
}

/** Output (in order, at most 64 KiB each) and then exactly one exit per spawned process. */
export type AgentProcessEvent =
  { type: 'stdout' | 'stderr'; pid: number; data: Buffer } | { type: 'exit'; pid: number; exitCode: number | null; signal: string | null; durationMs: number };

export interface AgentProcessInfo {
  pid: number;
  /** Cut to 1 KiB in all. */
  argv: string[];
  pty: boolean;
  running: boolean;
  exitCode: number | null;
  signal: string | null;
  /** Guest uptime when it was started. */
  startedUptimeMs: number;
}

export type ProcessSignal = 'SIGINT' | 'SIGTERM' | 'SIGKILL' | 'SIGHUP' | 'SIGQUIT' | 'SIGUSR1' | 'SIGUSR2' | 'SIGSTOP' | 'SIGCONT' | 'SIGWINCH';

export interface ExecRequest {
  /** Program and arguments; no shell is involved. argv[0] is looked up in the guest's PATH. */
  argv: readonly string[];
  /** Added to the base environment PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/.tfc/bin HOME=/root TERM=dumb (and override it). */
  env?: Readonly<Record<string, string>>;
  /** Working directory in the guest. Default: the agent's (/). */
  cwd?: string;
  /** Written to the command's stdin, which is then closed. Default: empty stdin. */
  stdin?: Buffer | string;
  /** Kill the command's whole process group after this long. Default 30000; 0 = no limit. */
  timeoutMs?: number;
  /** Output kept per stream; the rest is read and dropped. Default 1 MiB, at most 8 MiB. */
  maxOutputBytes?: number;
}

export interface ExecResult {
  /** null when the command was killed by a signal. */
  exitCode: number | null;
  /** e.g. "SIGKILL"; null when the command exited. */
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  /** The command ran past its timeoutMs and was killed with SIGKILL. */
  timedOut: boolean;
  /** From start until the command exited, measured in the guest. */
  durationMs: number;
}

export interface WriteFileOptions {
  /** Permission bits. Default 0o644 on creation; when given, also applied to an existing file. */
  mode?: number;
  /** Append instead of replacing the content. Default false. */
  append?: boolean;
  /** Create missing parent directories (mode 0755). Default false. */
  mkdirs?: boolean;
}

export interface ReadFileOptions {
  /** Return at most this many bytes (then `truncated` is true). Default 8 MiB, at most 16 MiB. */
  maxBytes?: number;
}

export interface WriteFileFromOptions {
  /** Permission bits, as writeFile. Default 0o644 on creation. */
  mode?: number;
  /** Create missing parent directories (mode 0755). Default false. */
  mkdirs?: boolean;
  /** Bytes per write_file request. Default FILE_CHUNK_DEFAULT_BYTES, at most FILE_CHUNK_MAX_BYTES. */
  chunkBytes?: number;
}

export interface ReadFileChunksOptions {
  /** Bytes per read_file request (the largest chunk yielded). Default FILE_CHUNK_DEFAULT_BYTES, at most FILE_CHUNK_MAX_BYTES. */
  chunkBytes?: number;
  /**
   * Largest file to read: a file whose size (first reply) is larger, or one
   * that grows past it while being read (/dev/zero, a guest appending),
   * throws PayloadTooLargeError instead of streaming on. Default: no limit.
   */
  maxBytes?: number;
}

export interface ReadFileResult {
  data: Buffer;
  /** The file's size; for files of unknown size (/proc, devices), the bytes read. */
  size: number;
  truncated: boolean;
}
