/**
 * One `VmExecuteRequest` run in a VM: checks the request against the
 * bounds, writes the code to a file in the guest, runs its interpreter
 * there (the same argv as POST /v1/run) and maps the result to a
 * `VmExecuteResponse`. A program that exits non-zero, is killed or times
 * out is a response (exit_code and error say so), not an HTTP error.
 * Knows nothing about Fastify.
 */
import { randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import { InvalidArgumentError, PayloadTooLargeError } from '../../errors/index.js';
import { EXEC_DEFAULT_TIMEOUT_MS } from '../../guest/agent-protocol.js';
import type { ExecRequest, ExecResult } from '../../guest/agent-client.js';
import { interpreterArgv, MAX_RUN_OUTPUT_BYTES, type RunLanguage } from '../../run/index.js';
import { MAX_PATH_BYTES } from '../limits.js';
import { TERRAPHIM_LIMITS, type VmExecuteRequest, type VmExecuteResponse } from './models.js';

/** What the executor needs of a VM (Vm implements it). */
export interface ExecVm {
  readonly id: string;
  exec(request: ExecRequest): Promise<ExecResult>;
  writeFile(path: string, data: Buffer, options?: { mode?: number; mkdirs?: boolean }): Promise<void>;
}

/** Terraphim language names (VmExecutionConfig::default allowed_languages and common aliases) -> our run languages. */
const LANGUAGES: Record<string, RunLanguage> = {
  python: 'python',
  python3: 'python',
  py: 'python',
  javascript: 'node',
  js: 'node',
  node: 'node',
  nodejs: 'node',
  bash: 'bash',
  sh: 'bash',
  shell: 'bash',
};
export const TERRAPHIM_LANGUAGES = Object.keys(LANGUAGES);
const FILE: Record<RunLanguage, string> = { python: 'main.py', node: 'main.js', bash: 'main.sh' };

export interface CheckedExecute {
  language: RunLanguage;
  code: Buffer;
  timeoutMs: number;
  workingDir?: string;
}

function bad(field: string, rule: string, details: Record<string, unknown> = {}): never {
  throw new InvalidArgumentError(`${field} ${rule}`, { details: { field, ...details } });
}

/** The run language for a Terraphim `language`; throws InvalidArgumentError listing the supported ones. */
export function runLanguageOf(language: string): RunLanguage {
  const l = LANGUAGES[language.toLowerCase()];
  if (!l)
    bad('language', `${JSON.stringify(language.slice(0, 32))} is not supported; supported: ${TERRAPHIM_LANGUAGES.join(', ')}`, {
      languages: TERRAPHIM_LANGUAGES,
    });
  return l;
}

/** Checks a request before any VM is touched. Throws InvalidArgumentError, PayloadTooLargeError. */
export function checkExecute(req: VmExecuteRequest, maxTimeoutMs: number): CheckedExecute {
  const language = runLanguageOf(req.language);
  const code = Buffer.from(req.code, 'utf8');
  if (code.length > TERRAPHIM_LIMITS.maxCodeBytes)
    throw new PayloadTooLargeError(`code is ${code.length} bytes; at most ${TERRAPHIM_LIMITS.maxCodeBytes} are accepted`, {
      details: { field: 'code', limit: TERRAPHIM_LIMITS.maxCodeBytes },
    });
  if (req.requirements.length > 0)
    bad('requirements', 'must be empty: this server does not install packages; use a vm_type whose image has them (profile packages)', {
      requirements: req.requirements.slice(0, 16),
    });
  const s = req.timeout_seconds ?? 0;
  const timeoutMs = s === 0 ? Math.min(EXEC_DEFAULT_TIMEOUT_MS, maxTimeoutMs) : s * 1000;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs > maxTimeoutMs)
    bad('timeout_seconds', `is ${s}; at most ${Math.floor(maxTimeoutMs / 1000)} (api.max_exec_timeout_ms)`, { max: Math.floor(maxTimeoutMs / 1000) });
  const wd = req.working_dir ?? undefined;
  if (wd !== undefined) {
    if (!wd.startsWith('/')) bad('working_dir', 'must be an absolute guest path');
    if (wd.includes('\0')) bad('working_dir', 'contains a NUL byte');
    if (Buffer.byteLength(wd) > MAX_PATH_BYTES) bad('working_dir', `is longer than ${MAX_PATH_BYTES} bytes`);
  }
  return { language, code, timeoutMs, ...(wd !== undefined ? { workingDir: posix.normalize(wd) } : {}) };
}

/**
 * Runs `checked` in `vm`: the program goes to `<dir>/<execution_id>/main.<ext>`
 * (kept, for inspection), runs with `working_dir` or that directory as cwd.
 * Throws agent errors (AGENT_*, GUEST_COMMAND_NOT_FOUND when the
 * interpreter is missing) and INVALID_STATE for a VM that is not running.
 */
export async function executeIn(vm: ExecVm, checked: CheckedExecute, dir: string): Promise<VmExecuteResponse> {
  const executionId = randomUUID();
  const workDir = `${dir}/${executionId}`;
  const file = `${workDir}/${FILE[checked.language]}`;
  const startedAt = new Date();
  await vm.writeFile(file, checked.code, { mkdirs: true });
  const argv = interpreterArgv(checked.language);
  argv[argv.length - 1] = file;
  const r = await vm.exec({ argv, cwd: checked.workingDir ?? workDir, timeoutMs: checked.timeoutMs, maxOutputBytes: MAX_RUN_OUTPUT_BYTES });
  const completedAt = new Date();
  return {
    execution_id: executionId,
    vm_id: vm.id,
    // i32 on the Rust side: a program without an exit status (timeout, signal) reads 124 / -1, and `error` says why.
    exit_code: r.exitCode ?? (r.timedOut ? 124 : -1),
    stdout: r.stdout.toString('utf8'),
    stderr: r.stderr.toString('utf8'),
    duration_ms: Math.max(0, Math.round(r.durationMs)),
    started_at: startedAt.toISOString(),
    completed_at: completedAt.toISOString(),
    error: errorOf(r, checked.timeoutMs),
  };
}

function errorOf(r: ExecResult, timeoutMs: number): string | null {
  const notes: string[] = [];
  if (r.timedOut) notes.push(`execution timed out after ${timeoutMs} ms and was killed`);
  else if (r.signal) notes.push(`killed by signal ${r.signal}`);
  if (r.stdoutTruncated) notes.push(`stdout truncated at ${MAX_RUN_OUTPUT_BYTES} bytes`);
  if (r.stderrTruncated) notes.push(`stderr truncated at ${MAX_RUN_OUTPUT_BYTES} bytes`);
  return notes.length ? notes.join('; ') : null;
}
