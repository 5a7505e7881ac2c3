/**
 * Agent protocol version 1: the wire types (snake_case, exactly as on the
 * wire), the limits both sides enforce, response validation, and the single
 * mapping from agent error codes to project errors. docs/agent-protocol.md is
 * the prose version of this file; change both together.
 *
 * This module does no I/O (see agent-client.ts) and no framing (agent-frame.ts).
 */
import { AgentError, AgentProtocolError, GuestCommandNotFoundError, type TfcError } from '../errors/index.js';
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
    default:
      return CONTROL_REPLY_MAX_BYTES;
  }
}

type FieldKind = 'string' | 'bytes' | 'bytes?' | 'uint' | 'int' | 'boolean' | 'int|null' | 'string|null' | 'file_type' | 'dir_entries';

const DIR_ENTRY_FIELDS: Record<string, FieldKind> = {
  name: 'string',
  name_b64: 'bytes?',
  type: 'file_type',
  size: 'uint',
  mode: 'uint',
  mtime_ms: 'int',
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
 * The one mapping from an agent error to a project error: EXEC_NOT_FOUND
 * becomes GuestCommandNotFoundError, everything else AgentError. Both carry
 * `details.agent_code` (the agent's code) and `details.op`.
 */
export function agentError(op: string, error: AgentWireError): TfcError {
  const details = { agent_code: error.code, op };
  if (error.code === 'EXEC_NOT_FOUND') {
    return new GuestCommandNotFoundError(`${error.message}; install it in the guest image or pass an absolute path`, { details });
  }
  return new AgentError(`guest agent ${op} failed (${error.code}): ${error.message}`, { details });
}
