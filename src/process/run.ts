import { spawn } from 'node:child_process';
import { ProcessFailedError } from '../errors/index.js';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Bytes written to stdin, which is then closed. Default: stdin is /dev/null. */
  input?: Buffer | string;
  /** Kill (SIGKILL) and fail after this long. Default: no limit. */
  timeoutMs?: number;
  /** Resolve instead of throwing when the exit code is non-zero. Default false. */
  allowFailure?: boolean;
  /** Text appended to error messages, saying how to fix the failure. */
  hint?: string;
  signal?: AbortSignal;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
}

/**
 * Runs `file` with `args` to completion, collecting output.
 * Throws ProcessFailedError when the program cannot be started (e.g. not
 * installed), times out, or exits non-zero (unless `allowFailure`). The
 * error message names the command, the exit status and the tail of stderr.
 */
export function runCommand(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const shown = [file, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      signal: options.signal,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, options.timeoutMs);
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    if (options.input !== undefined) child.stdin!.end(options.input);
    const hint = options.hint ? `; ${options.hint}` : '';
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = e.code === 'ENOENT' ? `program not found: ${file}` : `could not run ${shown}: ${e.message}`;
      reject(new ProcessFailedError(`${why}${hint}`, { cause: e, details: { command: file, args } }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result: RunResult = { code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
      if (timedOut) {
        reject(new ProcessFailedError(`${shown} timed out after ${options.timeoutMs} ms${hint}`, { details: { command: file, args } }));
      } else if (code !== 0 && !options.allowFailure) {
        const tail = result.stderr.toString('utf8').trim().split('\n').slice(-5).join('\n');
        const status = code === null ? `signal ${signal}` : `exit code ${code}`;
        reject(
          new ProcessFailedError(`${shown} failed with ${status}${tail ? `: ${tail}` : ''}${hint}`, {
            details: { command: file, args, code, signal },
          }),
        );
      } else {
        resolve(result);
      }
    });
  });
}
