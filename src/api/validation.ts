/**
 * Checks of request content that JSON schemas cannot express well: NUL bytes
 * (a C string in the guest would end there, or the agent would refuse with
 * a 502), byte totals, and bounds that come from the configuration. Every
 * failure is an InvalidArgumentError naming the field and the rule, so the
 * client gets a 400 before anything reaches the guest.
 *
 * This module does no I/O and knows nothing about Fastify.
 */
import { InvalidArgumentError } from '../errors/index.js';
import { MAX_ARG_BYTES, MAX_ARGV_ENV_TOTAL_BYTES, MAX_ARGV_ITEMS, MAX_ENV_ENTRIES, MAX_PATH_BYTES, defaultExecTimeoutMs, type ApiLimits } from './limits.js';

export type OutputEncoding = 'utf8' | 'base64';

/** The exec request body as the schema lets it through. */
export interface ExecBody {
  cmd: string[];
  stdin?: string;
  env?: Record<string, string>;
  cwd?: string;
  timeout_ms?: number;
  output_encoding?: OutputEncoding;
}

export interface CheckedExec {
  argv: string[];
  stdin?: string;
  env?: Record<string, string>;
  cwd?: string;
  /** Always set: a request's 0 or absent timeout becomes the default. */
  timeoutMs: number;
  outputEncoding: OutputEncoding;
}

function bad(field: string, rule: string, details: Record<string, unknown> = {}): never {
  throw new InvalidArgumentError(`${field} ${rule}`, { details: { field, ...details } });
}

function noNul(field: string, value: string): void {
  if (value.includes('\0')) bad(field, 'contains a NUL byte (\\u0000); the guest cannot pass it to a program: remove it');
}

/**
 * Checks a guest path (file path or cwd): a string, absolute when required,
 * no NUL, at most MAX_PATH_BYTES of UTF-8. Throws InvalidArgumentError.
 */
export function checkGuestPath(field: string, path: unknown, options: { absolute?: boolean } = {}): string {
  if (typeof path !== 'string' || path === '') bad(field, 'must be a non-empty string');
  noNul(field, path);
  if (options.absolute && !path.startsWith('/')) bad(field, `must be an absolute path in the guest (start with "/"), got ${JSON.stringify(path.slice(0, 64))}`);
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_PATH_BYTES)
    bad(field, `is ${bytes} bytes long; paths may be at most ${MAX_PATH_BYTES} bytes (Linux PATH_MAX)`, { max_bytes: MAX_PATH_BYTES });
  return path;
}

/**
 * Checks an exec body against the bounds and normalises its timeout (0 or
 * absent: the default; above `limits.maxExecTimeoutMs`: rejected, naming the
 * maximum). Throws InvalidArgumentError naming the field.
 */
export function checkExec(body: ExecBody, limits: ApiLimits): CheckedExec {
  const { cmd, env } = body;
  if (!Array.isArray(cmd) || cmd.length === 0) bad('cmd', 'must be a non-empty array of strings (argv; no shell)');
  if (cmd.length > MAX_ARGV_ITEMS) bad('cmd', `has ${cmd.length} items; at most ${MAX_ARGV_ITEMS} are allowed`, { max_items: MAX_ARGV_ITEMS });
  if (cmd[0] === '') bad('cmd[0]', 'must name the program to run (it is empty)');
  let total = 0;
  cmd.forEach((arg, i) => {
    if (typeof arg !== 'string') bad(`cmd[${i}]`, 'must be a string');
    noNul(`cmd[${i}]`, arg);
    const n = Buffer.byteLength(arg);
    if (n > MAX_ARG_BYTES)
      bad(`cmd[${i}]`, `is ${n} bytes long; one argument may be at most ${MAX_ARG_BYTES} bytes (Linux MAX_ARG_STRLEN); pass large data as stdin or a file`, {
        max_bytes: MAX_ARG_BYTES,
      });
    total += n + 1;
  });
  if (env !== undefined) {
    const entries = Object.entries(env);
    if (entries.length > MAX_ENV_ENTRIES)
      bad('env', `has ${entries.length} variables; at most ${MAX_ENV_ENTRIES} are allowed`, { max_entries: MAX_ENV_ENTRIES });
    for (const [key, value] of entries) {
      const field = `env[${JSON.stringify(key.slice(0, 64))}]`;
      if (key === '' || key.includes('=')) bad(field, 'is not a valid variable name: it must be non-empty and contain no "="');
      noNul(`${field} (name)`, key);
      if (typeof value !== 'string') bad(field, 'must be a string');
      noNul(field, value);
      const n = Buffer.byteLength(key) + 1 + Buffer.byteLength(value);
      if (n > MAX_ARG_BYTES)
        bad(field, `is ${n} bytes as NAME=VALUE; at most ${MAX_ARG_BYTES} are allowed (Linux MAX_ARG_STRLEN)`, { max_bytes: MAX_ARG_BYTES });
      total += n + 1;
    }
  }
  if (total > MAX_ARGV_ENV_TOTAL_BYTES)
    bad('cmd and env', `are ${total} bytes together; at most ${MAX_ARGV_ENV_TOTAL_BYTES} are allowed: pass large data as stdin or a file`, {
      max_bytes: MAX_ARGV_ENV_TOTAL_BYTES,
    });
  if (body.cwd !== undefined) checkGuestPath('cwd', body.cwd);
  const t = body.timeout_ms;
  if (t !== undefined && (!Number.isSafeInteger(t) || t < 0)) bad('timeout_ms', 'must be a non-negative integer (milliseconds; 0 or absent means the default)');
  if (t !== undefined && t > limits.maxExecTimeoutMs) {
    bad('timeout_ms', `is ${t}; the most this server allows is ${limits.maxExecTimeoutMs} ms (api.max_exec_timeout_ms)`, { max: limits.maxExecTimeoutMs });
  }
  return {
    argv: cmd,
    ...(body.stdin !== undefined ? { stdin: body.stdin } : {}),
    ...(env !== undefined ? { env } : {}),
    ...(body.cwd !== undefined ? { cwd: body.cwd } : {}),
    timeoutMs: t ? t : defaultExecTimeoutMs(limits),
    outputEncoding: body.output_encoding ?? 'utf8',
  };
}

/** Parses an octal `mode` query value (schema-checked to 3-4 octal digits). */
export function parseMode(mode: string | undefined): number | undefined {
  return mode === undefined ? undefined : parseInt(mode, 8);
}
