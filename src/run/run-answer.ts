import type { RunResult } from './code-runner.js';

/** The JSON answer of POST /v1/run (also what `tfc run --json` prints): snake_case, output as UTF-8 text. */
export interface RunAnswer {
  exit_code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  duration_ms: number;
  timed_out: boolean;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  vm_id: string;
  profile?: string;
  source?: string;
  pool?: string | null;
  timings: Record<string, number>;
}

export function runAnswer(r: RunResult): RunAnswer {
  return {
    exit_code: r.exitCode,
    signal: r.signal,
    stdout: r.stdout.toString('utf8'),
    stderr: r.stderr.toString('utf8'),
    duration_ms: r.durationMs,
    timed_out: r.timedOut,
    stdout_truncated: r.stdoutTruncated,
    stderr_truncated: r.stderrTruncated,
    vm_id: r.vmId,
    profile: r.profile,
    source: r.source,
    pool: r.pool,
    timings: r.timings,
  };
}
