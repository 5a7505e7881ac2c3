import { hasCode, ImageNotFoundError, TfcError } from '../errors/index.js';
import type { ExecRequest, ExecResult } from '../guest/agent-client.js';
import type { Profile } from '../config/index.js';
import { checkRunRequest, DEFAULT_RUN_DIR, MAX_RUN_OUTPUT_BYTES, type CheckedRun, type RunLanguage, type RunRequest } from './run-request.js';

/** What the runner needs of a VM (Vm implements it). */
export interface RunVm {
  readonly id: string;
  exec(request: ExecRequest): Promise<ExecResult>;
  writeFile(path: string, data: Buffer, options?: { mode?: number; mkdirs?: boolean }): Promise<void>;
}

/** A VM to run in and how to give it back. */
export interface LeasedVm {
  vm: RunVm;
  source: 'pool' | 'clone';
  pool: string | null;
  /** Release to the pool, or destroy the clone. Never called twice. */
  giveBack(): Promise<void>;
}

/** Where VMs come from: pools (daemon) and ad-hoc clones of golden snapshots. */
export interface RunVmSource {
  /** Profile by name (undefined: the config's default profile). Throws ProfileNotFoundError. */
  profile(name?: string): Profile;
  /** A pool to allocate from: `name` when given (throws PoolNotFoundError), else one whose profile is `profile`, else null. */
  pool(name: string | undefined, profile: string): { name: string } | null;
  allocate(pool: string): Promise<LeasedVm>;
  /** A new clone of `profile`'s golden snapshot (made first when missing), destroyed by giveBack. */
  clone(profile: Profile): Promise<LeasedVm>;
}

export interface CodeRunnerOptions {
  source: RunVmSource;
  /** Largest timeout a request may ask for (the daemon: api.max_exec_timeout_ms). */
  maxTimeoutMs: number;
  /** Timeout for requests without one. Default 30000. */
  defaultTimeoutMs?: number;
  /** Config key named when a timeout is above the maximum. */
  timeoutKey?: string;
  /** Work directory in the guest. Default /tmp/tfc-run (tests on the fake driver use a host temp dir). */
  dir?: string;
  /**
   * Answer before the VM is given back (the daemon: a destroy takes tens of
   * ms that the caller need not wait for); failures then go to
   * `onGiveBackError`. Default false: `run` resolves after the give-back.
   */
  giveBackInBackground?: boolean;
  onGiveBackError?: (err: unknown, vmId: string) => void;
}

export interface RunResult {
  exitCode: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  timedOut: boolean;
  /** The program's run time, measured in the guest. */
  durationMs: number;
  vmId: string;
  profile: string;
  source: 'pool' | 'clone';
  pool: string | null;
  /** allocate_ms, write_ms, run_ms, release_ms (unless given back in the background), total_ms (host side). */
  timings: Record<string, number>;
}

/** Profile per language; bash runs in the config's default profile. */
export function profileFor(language: RunLanguage): string | undefined {
  return language === 'bash' ? undefined : language;
}

const MAIN_FILE: Record<RunLanguage, string> = { python: 'main.py', node: 'main.js', bash: 'main.sh' };

/** The guest argv that runs the program file (bash when the image has it, else sh). */
export function interpreterArgv(language: RunLanguage): string[] {
  switch (language) {
    case 'python':
      return ['python3', MAIN_FILE.python];
    case 'node':
      return ['node', MAIN_FILE.node];
    case 'bash':
      return ['sh', '-c', 'if command -v bash >/dev/null 2>&1; then exec bash "$0"; else exec sh "$0"; fi', MAIN_FILE.bash];
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/**
 * Runs a program in a fresh VM: picks the VM (the pool asked for, else a
 * pool of the language's profile, else a clone of the profile's golden
 * snapshot), writes the files and the program under the work directory,
 * runs the interpreter there with stdin, env and a timeout, and gives the
 * VM back, always, also when something failed (optionally without waiting). Used by POST /v1/run and,
 * with local VMs, by `tfc run`. Knows nothing about HTTP.
 */
export class CodeRunner {
  private readonly dir: string;

  constructor(private readonly options: CodeRunnerOptions) {
    this.dir = options.dir ?? DEFAULT_RUN_DIR;
  }

  /** Checks a request without running it (InvalidArgumentError, PayloadTooLargeError). */
  check(request: RunRequest): CheckedRun {
    return checkRunRequest(request, {
      dir: this.dir,
      defaultTimeoutMs: this.options.defaultTimeoutMs ?? 30_000,
      maxTimeoutMs: this.options.maxTimeoutMs,
      ...(this.options.timeoutKey ? { timeoutKey: this.options.timeoutKey } : {}),
    });
  }

  /**
   * Runs `request`. A program that fails, exits non-zero or times out is a
   * result, not an error. Throws the check errors, PROFILE_NOT_FOUND,
   * POOL_NOT_FOUND, POOL_EXHAUSTED, IMAGE_NOT_FOUND (naming the build
   * command), VM creation errors, GUEST_COMMAND_NOT_FOUND (the interpreter
   * is missing from the image) and agent errors.
   */
  async run(request: RunRequest): Promise<RunResult> {
    const checked = this.check(request);
    const started = performance.now();
    const { source } = this.options;
    const profileName = profileFor(checked.language);
    const profile = source.profile(profileName);
    const pool = source.pool(checked.pool, profile.name);
    let leased: LeasedVm;
    try {
      leased = pool ? await source.allocate(pool.name) : await source.clone(profile);
    } catch (err) {
      throw withBuildHint(err, profile.name);
    }
    const allocatedAt = performance.now();
    let writtenAt = allocatedAt;
    let result: ExecResult;
    let ranAt: number;
    try {
      for (const f of checked.files) await leased.vm.writeFile(f.path, f.content, { mkdirs: true });
      await leased.vm.writeFile(`${this.dir}/${MAIN_FILE[checked.language]}`, checked.code, { mkdirs: true });
      writtenAt = performance.now();
      result = await leased.vm.exec({
        argv: interpreterArgv(checked.language),
        cwd: this.dir,
        timeoutMs: checked.timeoutMs,
        maxOutputBytes: MAX_RUN_OUTPUT_BYTES,
        ...(checked.stdin ? { stdin: checked.stdin } : {}),
        ...(checked.env ? { env: checked.env } : {}),
      });
      ranAt = performance.now();
    } finally {
      if (this.options.giveBackInBackground) {
        const vmId = leased.vm.id;
        void leased.giveBack().catch((err: unknown) => this.options.onGiveBackError?.(err, vmId));
      } else await leased.giveBack();
    }
    const releasedAt = performance.now();
    return {
      exitCode: result.exitCode,
      signal: result.signal,
      stdout: result.stdout,
      stderr: result.stderr,
      stdoutTruncated: result.stdoutTruncated,
      stderrTruncated: result.stderrTruncated,
      timedOut: result.timedOut,
      durationMs: result.durationMs,
      vmId: leased.vm.id,
      profile: profile.name,
      source: leased.source,
      pool: leased.pool,
      timings: {
        allocate_ms: round(allocatedAt - started),
        write_ms: round(writtenAt - allocatedAt),
        run_ms: round(ranAt - writtenAt),
        ...(this.options.giveBackInBackground ? {} : { release_ms: round(releasedAt - ranAt) }),
        total_ms: round(releasedAt - started),
      },
    };
  }
}

/** An image that is not built: says which profile the language needs; the image store's message names the build command. */
function withBuildHint(err: unknown, profile: string): unknown {
  if (!hasCode(err, 'IMAGE_NOT_FOUND')) return err;
  const e = err as TfcError;
  return new ImageNotFoundError(`this language runs in profile ${profile}, whose image is not built: ${e.message}`, {
    cause: err,
    details: { ...e.details, profile },
  });
}
