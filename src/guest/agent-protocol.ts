/**
 * Agent protocol version 1: the wire types (snake_case, exactly as on the
 * wire), the limits both sides enforce, response validation, and the single
 * mapping from agent error codes to project errors. docs/agent-protocol.md is
 * the prose version of this file; change both together.
 *
 * This module does no I/O (see agent-client.ts) and no framing (agent-frame.ts).
 */
import {
  AgentError,
  AgentProtocolError,
  GuestCommandNotFoundError,
  InvalidStateError,
  ProcessNotFoundError,
  VmBusyError,
  type TfcError,
} from '../errors/index.js';
import { base64Length } from './base64.js';

/**
 * Major protocol version, sent as `v` in every message. Additive changes (new
 * ops, new optional request fields, new result fields) keep it; anything an
 * older peer would misread bumps it.
 */
export const AGENT_PROTOCOL_VERSION = 1;

const MIB = 1024 * 1024;
export const EXEC_DEFAULT_TIMEOUT_MS = 30_000;
export const EXEC_MAX_TIMEOUT_MS = 0xffff_ffff;
export const EXEC_DEFAULT_MAX_OUTPUT_BYTES = 1 * MIB;
export const EXEC_MAX_OUTPUT_BYTES = 8 * MIB;
export const READ_FILE_DEFAULT_MAX_BYTES = 8 * MIB;
export const READ_FILE_MAX_BYTES = 16 * MIB;
/**
 * Chunked file transfer (AgentClient.writeFileFrom / readFileChunks): the
 * largest piece one write_file or read_file request moves, and the default.
 * A 4 MiB chunk is about 5.4 MiB of base64, well inside both frame limits;
 * the API layer sizes its own buffers from these.
 */
export const FILE_CHUNK_MAX_BYTES = 4 * MIB;
export const FILE_CHUNK_DEFAULT_BYTES = 1 * MIB;
/**
 * Largest reply frame the host accepts for an op that carries no bulk data
 * (hello, ping, write_file, set_clock, add_entropy, shutdown) and for an
 * error reply: an error message is at most 1 KiB before JSON escaping.
 */
export const CONTROL_REPLY_MAX_BYTES = 64 * 1024;
/** list_dir: entries per reply by default and at most (the agent's cap too). */
export const LIST_DIR_DEFAULT_MAX_ENTRIES = 10_000;
export const LIST_DIR_MAX_ENTRIES = 10_000;
/**
 * Largest JSON one list_dir entry can take: a 255-byte name of invalid
 * UTF-8 is 1530 bytes of `\ufffd` escapes plus 340 of `name_b64`, and the
 * other members about 130. 10,000 entries are at most about 20 MiB.
 */
export const LIST_DIR_ENTRY_MAX_BYTES = 2048;
/** 9999-12-31T23:59:59.999Z, the latest time set_clock accepts. */
export const MAX_UNIX_MS = 253_402_300_799_999;

/** Features an agent's hello may advertise; the host only uses an op whose feature is there. */
export const AGENT_FEATURES = ['processes', 'pty'] as const;
/** Processes running or with an exit not yet reported, per agent (TOO_MANY_PROCESSES beyond). */
export const PROC_MAX_LIVE = 32;
/** Exited processes an agent keeps for proc_list besides the live ones. */
export const PROC_MAX_DONE = 32;
/** Raw bytes of process output in one output event, at most. */
export const PROC_OUTPUT_EVENT_MAX_BYTES = 64 * 1024;
/** stdin bytes an agent queues per process (STDIN_FULL beyond). */
export const PROC_STDIN_MAX_BYTES = 1 * MIB;
/** pty columns and rows: 1 .. this. */
export const PTY_MAX_SIZE = 1000;
/**
 * Largest event frame: base64 of PROC_OUTPUT_EVENT_MAX_BYTES (87,384 bytes)
 * plus an envelope of about 100. Events may arrive at any time, so no frame
 * limit is ever below this.
 */
export const EVENT_FRAME_MAX_BYTES = 128 * 1024;
/** proc_list keeps this many argv bytes per process (1 KiB; at most 6 bytes of JSON each) plus ~200 of other members. */
export const PROC_LIST_ENTRY_MAX_BYTES = 8 * 1024;
/**
 * Ops whose reply is deferred until the work ends: requests sent after them
 * are answered first. Every other reply comes in request order.
 */
export const DEFERRED_REPLY_OPS: ReadonlySet<string> = new Set(['exec']);

export type AgentTransport = 'serial' | 'vsock' | 'unix';
export type ShutdownMode = 'reboot' | 'poweroff';

export interface HelloResult {
  agent_version: string;
  protocol: number;
  transport: AgentTransport;
  pid: number;
  kernel_release: string;
  /** Guest uptime when the agent's transport became ready. */
  ready_uptime_ms: number;
  uptime_ms: number;
  /** What this agent can do beyond the base ops (absent from agents before processes). */
  features?: string[];
}

export interface PingResult {
  uptime_ms: number;
}

export interface ExecParams {
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  stdin_b64?: string;
  /** 0 means no limit. */
  timeout_ms?: number;
  /** Per stream. */
  max_output_bytes?: number;
}

/**
 * A `_b64` result field: base64 text on the wire; the host's frame decoder
 * hands long ones over already decoded (agent-frame.ts binaryFields).
 */
export type WireBytes = string | Buffer;

/** The bytes of a WireBytes field. */
export function wireBytes(value: WireBytes): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'base64') : value;
}

export interface ExecWireResult {
  exit_code: number | null;
  signal: string | null;
  stdout_b64: WireBytes;
  stderr_b64: WireBytes;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  timed_out: boolean;
  duration_ms: number;
}

export interface WriteFileParams {
  path: string;
  data_b64: string;
  mode?: number;
  append?: boolean;
  mkdirs?: boolean;
}

export interface WriteFileResult {
  bytes_written: number;
}

export interface ReadFileParams {
  path: string;
  max_bytes?: number;
  /** Start reading here (regular files and other seekable files). Default 0. */
  offset?: number;
}

export interface ReadFileResult {
  data_b64: WireBytes;
  size: number;
  /** More bytes follow after offset + the data returned. */
  truncated: boolean;
  /** Echo of the request's offset (agents before chunked reads omit it). */
  offset?: number;
}

export interface SetClockParams {
  unix_ms: number;
}

export interface SetClockResult {
  previous_unix_ms: number;
}

export interface AddEntropyParams {
  data_b64: string;
}

export interface AddEntropyResult {
  bytes_added: number;
}

export interface ShutdownParams {
  mode?: ShutdownMode;
}

export type FileType = 'file' | 'dir' | 'symlink' | 'other';
export const FILE_TYPES: readonly FileType[] = ['file', 'dir', 'symlink', 'other'];

export interface ListDirParams {
  path: string;
  max_entries?: number;
}

export interface DirEntryWire {
  /** The name; bytes that are not UTF-8 are replaced by U+FFFD... */
  name: string;
  /** ...and then the exact bytes are here (absent for UTF-8 names). */
  name_b64?: WireBytes;
  type: FileType;
  size: number;
  /** Permission bits (st_mode & 07777). */
  mode: number;
  mtime_ms: number;
}

export interface ListDirResult {
  /** In directory order, without "." and "..". */
  entries: DirEntryWire[];
  /** More entries exist than max_entries. */
  truncated: boolean;
}

export interface StatParams {
  path: string;
}

export interface StatResult {
  type: FileType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime_ms: number;
  /** The link's target for a symlink (lossy like DirEntryWire.name), else null. */
  symlink_target: string | null;
  symlink_target_b64?: WireBytes;
}

export interface MkdirParams {
  path: string;
  parents?: boolean;
  mode?: number;
}

export interface MkdirResult {
  /** False when `parents` was set and the directory already existed. */
  created: boolean;
}

export interface RemoveParams {
  path: string;
  recursive?: boolean;
}

export interface RemoveResult {
  /** Entries removed (files, links and directories). */
  removed: number;
}

export interface SpawnParams {
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  pty?: { cols: number; rows: number };
}

export interface SpawnResult {
  pid: number;
}

export interface ProcWriteParams {
  pid: number;
  data_b64?: string;
  eof?: boolean;
}

export interface ProcWriteResult {
  bytes_accepted: number;
}

export interface ProcSignalParams {
  pid: number;
  signal: string;
}

export interface ProcResizeParams {
  pid: number;
  cols: number;
  rows: number;
}

export interface ProcessInfoWire {
  pid: number;
  /** Cut to 1 KiB in all. */
  argv: string[];
  pty: boolean;
  running: boolean;
  exit_code: number | null;
  signal: string | null;
  started_uptime_ms: number;
}

export interface ProcListResult {
  processes: ProcessInfoWire[];
}

/** Agent -> host messages without an id: `event` says which. */
export interface OutputEventWire {
  v: number;
  event: 'output';
  pid: number;
  stream: 'stdout' | 'stderr';
  data_b64: WireBytes;
}

export interface ExitEventWire {
  v: number;
  event: 'exit';
  pid: number;
  exit_code: number | null;
  signal: string | null;
  duration_ms: number;
}

type Empty = Record<string, never>;

/** Every op with its request parameters and its result. */
export interface AgentOps {
  hello: { params: Empty; result: HelloResult };
  ping: { params: Empty; result: PingResult };
  exec: { params: ExecParams; result: ExecWireResult };
  write_file: { params: WriteFileParams; result: WriteFileResult };
  read_file: { params: ReadFileParams; result: ReadFileResult };
  set_clock: { params: SetClockParams; result: SetClockResult };
  add_entropy: { params: AddEntropyParams; result: AddEntropyResult };
  shutdown: { params: ShutdownParams; result: Empty };
  list_dir: { params: ListDirParams; result: ListDirResult };
  stat: { params: StatParams; result: StatResult };
  mkdir: { params: MkdirParams; result: MkdirResult };
  remove: { params: RemoveParams; result: RemoveResult };
  spawn: { params: SpawnParams; result: SpawnResult };
  proc_write: { params: ProcWriteParams; result: ProcWriteResult };
  proc_signal: { params: ProcSignalParams; result: Empty };
  proc_resize: { params: ProcResizeParams; result: Empty };
  proc_list: { params: Empty; result: ProcListResult };
}

export type AgentOp = keyof AgentOps;

export type AgentRequest<O extends AgentOp = AgentOp> = {
  v: typeof AGENT_PROTOCOL_VERSION;
  id: number;
  op: O;
} & AgentOps[O]['params'];

export interface AgentWireError {
  code: string;
  message: string;
}

export interface AgentSuccess {
  v: number;
  id: number;
  ok: true;
  result: Record<string, unknown>;
}

export interface AgentFailure {
  v: number;
  /** 0 when the agent could not tell which request failed (bad frame, bad JSON). */
  id: number;
  ok: false;
  error: AgentWireError;
}

export type AgentResponse = AgentSuccess | AgentFailure;

/** Error codes the agent sends; see docs/agent-protocol.md#error-codes. */
export const AGENT_ERROR_CODES = [
  'FRAME_TOO_LARGE',
  'BAD_REQUEST',
  'UNSUPPORTED_VERSION',
  'UNKNOWN_OP',
  'EXEC_NOT_FOUND',
  'EXEC_FAILED',
  'FILE_NOT_FOUND',
  'FILE_ERROR',
  'FILE_EXISTS',
  'SYSTEM_ERROR',
  'TOO_MANY_PROCESSES',
  'PROCESS_NOT_FOUND',
  'STDIN_FULL',
  'STDIN_CLOSED',
  'NOT_A_PTY',
] as const;
export type AgentErrorCode = (typeof AGENT_ERROR_CODES)[number];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks the envelope of a decoded reply. Throws AgentProtocolError when it
 * is not a version-1 reply; never throws for an `ok: false` reply (that is
 * the agent reporting a failure, which the caller maps with agentError).
 */
export function parseResponse(message: Record<string, unknown>): AgentResponse {
  const { v, id, ok } = message;
  if (v !== AGENT_PROTOCOL_VERSION) {
    throw new AgentProtocolError(
      `agent replied with protocol version ${String(v)}; this host speaks version ${AGENT_PROTOCOL_VERSION}: rebuild the guest image`,
      { details: { version: v } },
    );
  }
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw new AgentProtocolError('agent reply has no valid id');
  }
  if (ok === true && isRecord(message.result)) return message as unknown as AgentSuccess;
  const error = message.error;
  if (ok === false && isRecord(error) && typeof error.code === 'string' && typeof error.message === 'string') {
    return message as unknown as AgentFailure;
  }
  throw new AgentProtocolError(`agent reply ${id} is neither a result nor an error`);
}

export { base64Length } from './base64.js';

/**
 * The largest reply frame the host accepts for one request: a guest that
 * ignores the limits it was asked for (max_output_bytes, max_bytes) is cut
 * off at the frame header, before the host buffers the excess. Data-carrying
 * ops get room for their base64 payload plus CONTROL_REPLY_MAX_BYTES for the
 * rest of the reply; everything else gets CONTROL_REPLY_MAX_BYTES.
 */
export function replyFrameLimit(op: AgentOp, params: Record<string, unknown>): number {
  const n = (key: string, def: number) => (typeof params[key] === 'number' ? (params[key] as number) : def);
  switch (op) {
    case 'exec':
      return 2 * base64Length(n('max_output_bytes', EXEC_DEFAULT_MAX_OUTPUT_BYTES)) + CONTROL_REPLY_MAX_BYTES;
    case 'read_file':
      return base64Length(n('max_bytes', READ_FILE_DEFAULT_MAX_BYTES)) + CONTROL_REPLY_MAX_BYTES;
    case 'list_dir':
      return n('max_entries', LIST_DIR_DEFAULT_MAX_ENTRIES) * LIST_DIR_ENTRY_MAX_BYTES + CONTROL_REPLY_MAX_BYTES;
    case 'proc_list':
      return (PROC_MAX_LIVE + PROC_MAX_DONE) * PROC_LIST_ENTRY_MAX_BYTES + CONTROL_REPLY_MAX_BYTES;
    default:
      return CONTROL_REPLY_MAX_BYTES;
  }
}

type FieldKind =
  'string' | 'bytes' | 'bytes?' | 'uint' | 'int' | 'boolean' | 'int|null' | 'string|null' | 'file_type' | 'dir_entries' | 'strings?' | 'strings' | 'processes';

const DIR_ENTRY_FIELDS: Record<string, FieldKind> = {
  name: 'string',
  name_b64: 'bytes?',
  type: 'file_type',
  size: 'uint',
  mode: 'uint',
  mtime_ms: 'int',
};

const PROCESS_FIELDS: Record<string, FieldKind> = {
  pid: 'uint',
  argv: 'strings',
  pty: 'boolean',
  running: 'boolean',
  exit_code: 'int|null',
  signal: 'string|null',
  started_uptime_ms: 'uint',
};

const RESULT_FIELDS: { [O in AgentOp]: Record<string, FieldKind> } = {
  hello: {
    agent_version: 'string',
    protocol: 'uint',
    transport: 'string',
    pid: 'uint',
    kernel_release: 'string',
    ready_uptime_ms: 'uint',
    uptime_ms: 'uint',
    features: 'strings?',
  },
  ping: { uptime_ms: 'uint' },
  exec: {
    exit_code: 'int|null',
    signal: 'string|null',
    stdout_b64: 'bytes',
    stderr_b64: 'bytes',
    stdout_truncated: 'boolean',
    stderr_truncated: 'boolean',
    timed_out: 'boolean',
    duration_ms: 'uint',
  },
  write_file: { bytes_written: 'uint' },
  read_file: { data_b64: 'bytes', size: 'uint', truncated: 'boolean' },
  set_clock: { previous_unix_ms: 'uint' },
  add_entropy: { bytes_added: 'uint' },
  shutdown: {},
  list_dir: { entries: 'dir_entries', truncated: 'boolean' },
  stat: {
    type: 'file_type',
    size: 'uint',
    mode: 'uint',
    uid: 'uint',
    gid: 'uint',
    mtime_ms: 'int',
    symlink_target: 'string|null',
    symlink_target_b64: 'bytes?',
  },
  mkdir: { created: 'boolean' },
  remove: { removed: 'uint' },
  spawn: { pid: 'uint' },
  proc_write: { bytes_accepted: 'uint' },
  proc_signal: {},
  proc_resize: {},
  proc_list: { processes: 'processes' },
};

function fieldMatches(value: unknown, kind: FieldKind): boolean {
  switch (kind) {
    case 'string':
      return typeof value === 'string';
    case 'bytes':
      return typeof value === 'string' || Buffer.isBuffer(value);
    case 'bytes?':
      return value === undefined || typeof value === 'string' || Buffer.isBuffer(value);
    case 'int':
      return Number.isSafeInteger(value);
    case 'file_type':
      return typeof value === 'string' && (FILE_TYPES as readonly string[]).includes(value);
    case 'dir_entries':
      return Array.isArray(value) && value.every((e) => isRecord(e) && Object.entries(DIR_ENTRY_FIELDS).every(([field, kind]) => fieldMatches(e[field], kind)));
    case 'uint':
      return Number.isSafeInteger(value) && (value as number) >= 0;
    case 'boolean':
      return typeof value === 'boolean';
    case 'int|null':
      return value === null || Number.isSafeInteger(value);
    case 'string|null':
      return value === null || typeof value === 'string';
    case 'strings':
      return Array.isArray(value) && value.every((v) => typeof v === 'string');
    case 'strings?':
      return value === undefined || (Array.isArray(value) && value.every((v) => typeof v === 'string'));
    case 'processes':
      return (
        Array.isArray(value) &&
        value.length <= PROC_MAX_LIVE + PROC_MAX_DONE &&
        value.every((e) => isRecord(e) && Object.entries(PROCESS_FIELDS).every(([field, kind]) => fieldMatches(e[field], kind)))
      );
  }
}

/**
 * Checks that `result` carries every field of `op`'s result with the right
 * type (extra fields are allowed: newer agents may add some). Throws
 * AgentProtocolError naming the first bad field.
 */
export function validateResult<O extends AgentOp>(op: O, result: Record<string, unknown>): AgentOps[O]['result'] {
  for (const [field, kind] of Object.entries(RESULT_FIELDS[op])) {
    if (!fieldMatches(result[field], kind)) {
      throw new AgentProtocolError(`agent ${op} result has an invalid '${field}' (expected ${kind})`, {
        details: { op, field },
      });
    }
  }
  return result as AgentOps[O]['result'];
}

/**
 * The one mapping from an agent error to a project error; every one carries
 * `details.agent_code` (the agent's code) and `details.op`:
 * EXEC_NOT_FOUND -> GuestCommandNotFoundError; TOO_MANY_PROCESSES and
 * STDIN_FULL -> VmBusyError (back-pressure: retry later); PROCESS_NOT_FOUND
 * -> ProcessNotFoundError (unknown pid, or it has exited); STDIN_CLOSED and
 * NOT_A_PTY -> InvalidStateError; everything else AgentError.
 */
export function agentError(op: string, error: AgentWireError): TfcError {
  const details = { agent_code: error.code, op };
  switch (error.code) {
    case 'EXEC_NOT_FOUND':
      return new GuestCommandNotFoundError(`${error.message}; install it in the guest image or pass an absolute path`, { details });
    case 'TOO_MANY_PROCESSES':
    case 'STDIN_FULL':
      return new VmBusyError(`guest agent ${op} refused (${error.code}): ${error.message}`, { details });
    case 'PROCESS_NOT_FOUND':
      return new ProcessNotFoundError(`guest agent ${op} failed: ${error.message}`, { details });
    case 'STDIN_CLOSED':
    case 'NOT_A_PTY':
      return new InvalidStateError(`guest agent ${op} failed: ${error.message}`, { details });
    default:
      return new AgentError(`guest agent ${op} failed (${error.code}): ${error.message}`, { details });
  }
}
