/**
 * Test support (not shipped behaviour): runs the real `tfc` entry point
 * (cli/main.ts) in this process and captures what it prints, so CLI tests
 * run in milliseconds and count towards coverage. Must not be imported by
 * product code.
 */
import { vi } from 'vitest';
import { main } from '../cli/main.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout exactly as written (binary output). */
  stdoutBytes: Buffer;
}

/**
 * `tfc ...args` in-process. stdout/stderr are captured (not printed) and
 * process.exitCode is restored afterwards so a failing command does not
 * fail the test process itself.
 */
export async function runCli(args: string[]): Promise<CliRun> {
  return startCli(args).done;
}

export interface RunningCli {
  /** What it printed so far. */
  output(): { stdout: string; stderr: string };
  done: Promise<CliRun>;
}

/**
 * Like runCli, for long-running commands (`tfc serve`): output can be read
 * while it runs. Do not start another CLI run before this one is done (the
 * capture replaces process.stdout.write).
 */
export function startCli(args: string[]): RunningCli {
  const stdoutChunks: Buffer[] = [];
  let stderr = '';
  const capture = (sink: (b: Buffer) => void) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      sink(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
      const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      cb?.();
      return true;
    }) as typeof process.stdout.write;
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture((b) => stdoutChunks.push(b)));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture((b) => (stderr += b.toString('utf8'))));
  const stdout = () => Buffer.concat(stdoutChunks);
  const savedExit = process.exitCode;
  process.exitCode = undefined;
  const done = (async () => {
    try {
      const code = await main(['node', 'tfc', ...args]);
      return { code, stdout: stdout().toString('utf8'), stderr, stdoutBytes: stdout() };
    } finally {
      process.exitCode = savedExit;
      out.mockRestore();
      err.mockRestore();
    }
  })();
  return { output: () => ({ stdout: stdout().toString('utf8'), stderr }), done };
}
