/**
 * JSON schemas of the REST API: Fastify validates requests with them and
 * @fastify/swagger turns them into GET /v1/openapi.json. The CLI prints the
 * same shapes with --json, and the typed client derives its types from them
 * (src/client/types.ts), so they import only other schemas and constants.
 * The VM schemas (schemas-vms.ts) and the snapshot ones
 * (schemas-snapshots.ts, which use the VM schemas) live in files of their
 * own, re-exported here.
 */
import { MAX_ARG_BYTES, MAX_ARGV_ENV_TOTAL_BYTES, MAX_ARGV_ITEMS, MAX_ENV_ENTRIES, MAX_PATH_BYTES } from './limits.js';
import { VmIdParams } from './schemas-vms.js';

export * from './schemas-vms.js';
export * from './schemas-snapshots.js';

export const ErrorBody = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object', additionalProperties: true } },
    },
  },
} as const;

export const PoolBody = {
  type: 'object',
  required: ['name', 'profile', 'min', 'max', 'target', 'ready', 'booting', 'allocated'],
  properties: {
    name: { type: 'string' },
    profile: { type: 'string' },
    mode: { type: 'string' },
    strategy: { type: 'string' },
    prewarm_state: { type: 'string' },
    min: { type: 'integer' },
    max: { type: 'integer' },
    target: { type: 'integer' },
    ready: { type: 'integer' },
    booting: { type: 'integer' },
    waiting: { type: 'integer', description: "allocations waiting in the pool's first-come-first-served line" },
    allocated: { type: 'integer' },
    demand_per_s: { type: 'number' },
    refill_ms: { type: ['number', 'null'] },
    last_error: { type: ['string', 'null'] },
  },
} as const;

export const AllocateRequest = {
  type: 'object',
  additionalProperties: false,
  properties: {
    owner: { type: 'string', minLength: 1, maxLength: 128, description: 'reuse pools: released VMs are kept for this owner' },
    timeout_ms: { type: 'integer', minimum: 0, maximum: 600000, description: 'wait this long when the pool is empty (default: the pool allocate_timeout_ms)' },
    ttl_ms: {
      type: 'integer',
      minimum: 1,
      description:
        'lease: the VM is destroyed (fresh) or recycled (reuse) this long after allocation unless kept alive (default: the pool lease_ms, at most its max_lease_ms)',
    },
  },
} as const;

export const ExecRequest = {
  type: 'object',
  required: ['cmd'],
  additionalProperties: false,
  properties: {
    cmd: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_ARGV_ITEMS,
      items: { type: 'string' },
      description: `argv; no shell. No NUL bytes; one argument at most ${MAX_ARG_BYTES} bytes, argv and env together at most ${MAX_ARGV_ENV_TOTAL_BYTES} bytes`,
    },
    stdin: { type: 'string', description: "UTF-8 text written to the command's stdin (the whole JSON body is at most 8 MiB)" },
    env: {
      type: 'object',
      maxProperties: MAX_ENV_ENTRIES,
      additionalProperties: { type: 'string' },
      description: 'added to the guest\'s base environment; names without "=", no NUL bytes',
    },
    cwd: { type: 'string', description: `working directory in the guest; no NUL bytes, at most ${MAX_PATH_BYTES} bytes` },
    timeout_ms: {
      type: 'integer',
      minimum: 0,
      description: 'kill the command after this long; 0 or absent: 30000; at most api.max_exec_timeout_ms (default 600000)',
    },
    output_encoding: {
      type: 'string',
      enum: ['utf8', 'base64'],
      description: 'utf8 (default): stdout/stderr as text (invalid UTF-8 becomes U+FFFD); base64: the exact bytes, base64-encoded',
    },
  },
} as const;

export const ExecResponse = {
  type: 'object',
  required: ['exit_code', 'stdout', 'stderr', 'duration_ms'],
  properties: {
    exit_code: { type: ['integer', 'null'] },
    signal: { type: ['string', 'null'] },
    timed_out: { type: 'boolean' },
    stdout: { type: 'string' },
    stderr: { type: 'string' },
    output_encoding: { type: 'string', enum: ['utf8', 'base64'] },
    stdout_truncated: { type: 'boolean' },
    stderr_truncated: { type: 'boolean' },
    duration_ms: { type: 'number' },
  },
} as const;

export const PoolNameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } as const;
export const FileQuery = {
  type: 'object',
  required: ['path'],
  additionalProperties: false,
  properties: {
    path: { type: 'string', pattern: '^/', description: `absolute path in the guest; no NUL bytes, at most ${MAX_PATH_BYTES} bytes` },
    mode: { type: 'string', pattern: '^[0-7]{3,4}$', description: 'permission bits in octal (uploads only); default 0644' },
  },
} as const;

const guestPath = { type: 'string', pattern: '^/', description: `absolute path in the guest; no NUL bytes, at most ${MAX_PATH_BYTES} bytes` } as const;
const fileType = { type: 'string', enum: ['file', 'dir', 'symlink', 'other'] } as const;

export const ListQuery = {
  type: 'object',
  required: ['path'],
  additionalProperties: false,
  properties: {
    path: guestPath,
    max_entries: { type: 'string', pattern: '^[0-9]{1,6}$', description: 'at most this many entries, 1 to 10000 (default 10000)' },
  },
} as const;

export const PathQuery = { type: 'object', required: ['path'], additionalProperties: false, properties: { path: guestPath } } as const;

export const RemoveQuery = {
  type: 'object',
  required: ['path'],
  additionalProperties: false,
  properties: {
    path: guestPath,
    recursive: {
      type: 'string',
      enum: ['true', 'false'],
      description: 'remove a directory and its contents (symlinks are removed, never followed); default false',
    },
  },
} as const;

export const MkdirRequest = {
  type: 'object',
  required: ['path'],
  additionalProperties: false,
  properties: {
    path: guestPath,
    parents: { type: 'boolean', description: 'create missing parents; an existing directory is then success (created: false). Default false' },
    mode: { type: 'string', pattern: '^[0-7]{3,4}$', description: 'permission bits in octal, applied exactly; default 755 minus the umask' },
  },
} as const;

export const DirEntry = {
  type: 'object',
  required: ['name', 'type', 'size', 'mode', 'mtime_ms'],
  properties: {
    name: { type: 'string', description: 'the name; bytes that are not UTF-8 show as U+FFFD' },
    name_b64: { type: 'string', description: 'the exact bytes of a name that is not UTF-8 (absent otherwise)' },
    type: fileType,
    size: { type: 'integer' },
    mode: { type: 'integer', description: 'permission bits (st_mode & 07777)' },
    mtime_ms: { type: 'integer', description: 'modification time, milliseconds since the epoch' },
  },
} as const;

export const ListResponse = {
  type: 'object',
  required: ['path', 'entries', 'truncated'],
  properties: {
    path: { type: 'string' },
    entries: { type: 'array', items: DirEntry, description: 'sorted by name, without . and ..; symlinks are not followed' },
    truncated: { type: 'boolean', description: 'the directory holds more than max_entries entries' },
  },
} as const;

export const StatResponse = {
  type: 'object',
  required: ['path', 'type', 'size', 'mode', 'uid', 'gid', 'mtime_ms', 'symlink_target'],
  properties: {
    path: { type: 'string' },
    type: fileType,
    size: { type: 'integer' },
    mode: { type: 'integer' },
    uid: { type: 'integer' },
    gid: { type: 'integer' },
    mtime_ms: { type: 'integer' },
    symlink_target: { type: ['string', 'null'], description: "a symlink's target (not followed), null otherwise" },
    symlink_target_b64: { type: 'string', description: 'the exact bytes of a target that is not UTF-8 (absent otherwise)' },
  },
} as const;

export const MkdirResponse = {
  type: 'object',
  required: ['path', 'created'],
  properties: { path: { type: 'string' }, created: { type: 'boolean' } },
} as const;

export const RemoveResponse = {
  type: 'object',
  required: ['path', 'removed'],
  properties: { path: { type: 'string' }, removed: { type: 'integer', description: 'entries deleted (files, links, directories)' } },
} as const;

export const GuestNetworkRequest = {
  type: 'object',
  required: ['address', 'prefix', 'gateway'],
  additionalProperties: false,
  properties: {
    address: { type: 'string', pattern: '^\\d{1,3}(\\.\\d{1,3}){3}$' },
    prefix: { type: 'integer', minimum: 1, maximum: 32 },
    gateway: { type: 'string', pattern: '^\\d{1,3}(\\.\\d{1,3}){3}$' },
  },
} as const;

export const ProcessParams = {
  type: 'object',
  required: ['id', 'pid'],
  properties: { id: VmIdParams.properties.id, pid: { type: 'string', pattern: '^[0-9]{1,10}$' } },
} as const;

const ptySize = {
  type: 'object',
  required: ['cols', 'rows'],
  additionalProperties: false,
  properties: { cols: { type: 'integer', minimum: 1, maximum: 1000 }, rows: { type: 'integer', minimum: 1, maximum: 1000 } },
} as const;

export const SpawnRequest = {
  type: 'object',
  required: ['cmd'],
  additionalProperties: false,
  properties: {
    cmd: ExecRequest.properties.cmd,
    env: ExecRequest.properties.env,
    cwd: ExecRequest.properties.cwd,
    pty: { ...ptySize, description: 'run the process on a terminal of this size (stdout and stderr arrive together as stdout); resize later' },
  },
} as const;

export const SpawnResponse = { type: 'object', required: ['pid'], properties: { pid: { type: 'integer' } } } as const;

export const ProcessBody = {
  type: 'object',
  required: ['pid', 'cmd', 'pty', 'running', 'exit_code', 'signal', 'started_at'],
  properties: {
    pid: { type: 'integer' },
    cmd: { type: 'array', items: { type: 'string' } },
    pty: { type: 'boolean' },
    running: { type: 'boolean' },
    exit_code: { type: ['integer', 'null'] },
    signal: { type: ['string', 'null'] },
    started_at: { type: 'string', description: 'ISO time the daemon started it' },
    duration_ms: { type: ['number', 'null'], description: 'exited processes: run time measured in the guest' },
    last_event_id: { type: 'integer', description: 'id of the newest event in its output log' },
  },
} as const;

export const ProcessListResponse = { type: 'object', required: ['processes'], properties: { processes: { type: 'array', items: ProcessBody } } } as const;

export const OutputQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    encoding: { type: 'string', enum: ['utf8', 'base64'], description: 'utf8 (default): output as text; base64: the exact bytes' },
    last_event_id: { type: 'string', pattern: '^[0-9]{1,15}$', description: 'resume after this event id (as the Last-Event-ID header)' },
  },
} as const;

export const StdinRequest = {
  type: 'object',
  required: ['data'],
  additionalProperties: false,
  properties: {
    data: { type: 'string', description: 'bytes for stdin: text, or base64 with encoding "base64"; at most 1 MiB decoded' },
    encoding: { type: 'string', enum: ['utf8', 'base64'] },
    eof: { type: 'boolean', description: 'close stdin after writing (data may be empty)' },
  },
} as const;

export const StdinResponse = { type: 'object', required: ['bytes_accepted'], properties: { bytes_accepted: { type: 'integer' } } } as const;

export const SignalRequest = {
  type: 'object',
  required: ['signal'],
  additionalProperties: false,
  properties: {
    signal: { type: 'string', enum: ['SIGINT', 'SIGTERM', 'SIGKILL', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGSTOP', 'SIGCONT', 'SIGWINCH'] },
  },
} as const;

export const ResizeRequest = ptySize;

export const RunRequest = {
  type: 'object',
  required: ['language', 'code'],
  additionalProperties: false,
  properties: {
    language: { type: 'string', maxLength: 64, description: 'python, node or bash' },
    code: { type: 'string', description: 'the program (at most 1 MiB)' },
    stdin: { type: 'string', description: "text for the program's stdin" },
    files: {
      type: 'array',
      items: {
        type: 'object',
        required: ['path', 'content'],
        additionalProperties: false,
        properties: {
          path: { type: 'string', description: 'relative to /tmp/tfc-run, or absolute; no ".."' },
          content: { type: 'string' },
          encoding: { type: 'string', enum: ['utf8', 'base64'] },
        },
      },
      description: 'files written before the program starts (at most 100, 16 MiB in all)',
    },
    env: ExecRequest.properties.env,
    timeout_ms: { type: 'integer', minimum: 0, description: 'kill the program after this long; 0 or absent: 30000; at most api.max_exec_timeout_ms' },
    pool: { type: 'string', minLength: 1, maxLength: 64, description: 'allocate from this pool (default: a pool of the language profile, else a fresh clone)' },
  },
} as const;

export const RunResponse = {
  type: 'object',
  required: ['exit_code', 'stdout', 'stderr', 'duration_ms', 'timed_out', 'vm_id', 'timings'],
  properties: {
    exit_code: { type: ['integer', 'null'] },
    signal: { type: ['string', 'null'] },
    stdout: { type: 'string' },
    stderr: { type: 'string' },
    duration_ms: { type: 'number' },
    timed_out: { type: 'boolean' },
    stdout_truncated: { type: 'boolean' },
    stderr_truncated: { type: 'boolean' },
    vm_id: { type: 'string' },
    profile: { type: 'string' },
    source: { type: 'string', enum: ['pool', 'clone'] },
    pool: { type: ['string', 'null'] },
    timings: { type: 'object', additionalProperties: { type: 'number' } },
  },
} as const;
