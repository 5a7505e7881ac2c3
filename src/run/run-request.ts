/**
 * A code-execution request as the runner takes it, and its checks: the
 * language, the sizes (code, files, env), paths inside the work directory.
 * Every failure is an InvalidArgumentError or PayloadTooLargeError naming
 * the field and the limit. No I/O.
 */
import { posix } from 'node:path';
import { InvalidArgumentError, PayloadTooLargeError } from '../errors/index.js';

export const RUN_LANGUAGES = ['python', 'node', 'bash'] as const;
export type RunLanguage = (typeof RUN_LANGUAGES)[number];

const KIB = 1024;
const MIB = 1024 * KIB;

/** Largest program. */
export const MAX_RUN_CODE_BYTES = 1 * MIB;
/** Files per request, and their bytes together. */
export const MAX_RUN_FILES = 100;
export const MAX_RUN_FILES_BYTES = 16 * MIB;
/** Output kept per stream (stdout, stderr); the rest is dropped and the result says it was truncated. */
export const MAX_RUN_OUTPUT_BYTES = 1 * MIB;
/** Largest stdin. */
export const MAX_RUN_STDIN_BYTES = 8 * MIB;
const MAX_ENV_ENTRIES = 1024;
const MAX_ENV_BYTES = 128 * KIB - 1;
const MAX_PATH_BYTES = 4095;

/** Where files go and the program runs, in the guest. */
export const DEFAULT_RUN_DIR = '/tmp/tfc-run';

export interface RunFile {
  /** Relative to the work directory, or absolute; never containing "..". */
  path: string;
  content: Buffer;
}

export interface RunRequest {
  language: string;
  code: string;
  stdin?: Buffer | string;
  files?: readonly RunFile[];
  env?: Readonly<Record<string, string>>;
  /** 0 or absent: the runner's default. */
  timeoutMs?: number;
  /** Allocate from this pool (daemon only). */
  pool?: string;
}

export interface CheckedRun {
  language: RunLanguage;
  code: Buffer;
  stdin?: Buffer;
  files: Array<{ path: string; content: Buffer }>;
  env?: Record<string, string>;
  timeoutMs: number;
  pool?: string;
}

function bad(field: string, rule: string, details: Record<string, unknown> = {}): never {
  throw new InvalidArgumentError(`${field} ${rule}`, { details: { field, ...details } });
}

function tooLarge(field: string, bytes: number, max: number, unit: string): never {
  throw new PayloadTooLargeError(`${field} is ${bytes} ${unit}; at most ${max} ${unit} are accepted`, { details: { field, limit: max } });
}

export function isRunLanguage(value: string): value is RunLanguage {
  return (RUN_LANGUAGES as readonly string[]).includes(value);
}

/** The absolute guest path of a run file: relative paths are taken inside `dir`; ".." and NUL are refused. */
export function runFilePath(field: string, path: string, dir: string): string {
  if (typeof path !== 'string' || path === '') bad(field, 'must be a non-empty path');
  if (path.includes('\0')) bad(field, 'contains a NUL byte');
  if (path.split('/').includes('..'))
    bad(field, `must not contain ".." (got ${JSON.stringify(path.slice(0, 64))}); give a path inside ${dir} or an absolute one`);
  const full = path.startsWith('/') ? posix.normalize(path) : posix.join(dir, path);
  if (full.endsWith('/')) bad(field, `names a directory (${JSON.stringify(path.slice(0, 64))}); give a file path`);
  if (Buffer.byteLength(full) > MAX_PATH_BYTES) bad(field, `is longer than ${MAX_PATH_BYTES} bytes`, { max_bytes: MAX_PATH_BYTES });
  return full;
}

/**
 * Checks `request` and fills in defaults. `defaultTimeoutMs` applies to 0
 * or absent; above `maxTimeoutMs` is refused naming the maximum and
 * `timeoutKey` (the config key behind it). Throws InvalidArgumentError,
 * PayloadTooLargeError.
 */
export function checkRunRequest(
  request: RunRequest,
  options: { dir: string; defaultTimeoutMs: number; maxTimeoutMs: number; timeoutKey?: string },
): CheckedRun {
  const language = request.language;
  if (!isRunLanguage(language))
    bad('language', `must be one of ${RUN_LANGUAGES.join(', ')}; got ${JSON.stringify(String(language).slice(0, 32))}`, { languages: RUN_LANGUAGES });
  const code = Buffer.from(request.code ?? '', 'utf8');
  if (code.length > MAX_RUN_CODE_BYTES) tooLarge('code', code.length, MAX_RUN_CODE_BYTES, 'bytes');
  const stdin = request.stdin === undefined ? undefined : Buffer.isBuffer(request.stdin) ? request.stdin : Buffer.from(request.stdin, 'utf8');
  if (stdin && stdin.length > MAX_RUN_STDIN_BYTES) tooLarge('stdin', stdin.length, MAX_RUN_STDIN_BYTES, 'bytes');
  const given = request.files ?? [];
  if (given.length > MAX_RUN_FILES) tooLarge('files', given.length, MAX_RUN_FILES, 'files');
  let total = 0;
  const seen = new Set<string>();
  const files = given.map((f, i) => {
    const path = runFilePath(`files[${i}].path`, f.path, options.dir);
    if (seen.has(path)) bad(`files[${i}].path`, `repeats ${path}`);
    seen.add(path);
    total += f.content.length;
    return { path, content: f.content };
  });
  if (total > MAX_RUN_FILES_BYTES) tooLarge('files', total, MAX_RUN_FILES_BYTES, 'bytes in all');
  if (request.env) {
    const entries = Object.entries(request.env);
    if (entries.length > MAX_ENV_ENTRIES) bad('env', `has ${entries.length} variables; at most ${MAX_ENV_ENTRIES} are allowed`);
    for (const [k, v] of entries) {
      const field = `env[${JSON.stringify(k.slice(0, 64))}]`;
      if (k === '' || k.includes('=') || k.includes('\0')) bad(field, 'is not a valid variable name: non-empty, no "=", no NUL');
      if (typeof v !== 'string' || v.includes('\0')) bad(field, 'must be a string without NUL bytes');
      if (Buffer.byteLength(k) + 1 + Buffer.byteLength(v) > MAX_ENV_BYTES) bad(field, `is longer than ${MAX_ENV_BYTES} bytes as NAME=VALUE`);
    }
  }
  const t = request.timeoutMs;
  if (t !== undefined && (!Number.isSafeInteger(t) || t < 0)) bad('timeout_ms', 'must be a non-negative integer (milliseconds; 0 or absent means the default)');
  if (t !== undefined && t > options.maxTimeoutMs) {
    bad('timeout_ms', `is ${t}; the most allowed is ${options.maxTimeoutMs} ms${options.timeoutKey ? ` (${options.timeoutKey})` : ''}`, {
      max: options.maxTimeoutMs,
    });
  }
  return {
    language,
    code,
    ...(stdin ? { stdin } : {}),
    files,
    ...(request.env ? { env: { ...request.env } } : {}),
    timeoutMs: t ? t : Math.min(options.defaultTimeoutMs, options.maxTimeoutMs),
    ...(request.pool ? { pool: request.pool } : {}),
  };
}
