/**
 * Long-lived children (VMMs, test servers): spawn, wait, signal, and make
 * sure none outlives this process, however it ends. Knows nothing about
 * VMs; never uses a shell.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { VmmSpawnFailedError } from '../errors/index.js';
import { findExecedChild } from './children.js';
import { isSameProcessAlive, processStartTime } from './identity.js';
import { findExecutable } from './which.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Make the child die when this process dies without cleaning up (SIGKILL,
   * crash): through a guard process (see `ownerDeathMode`). Default true.
   */
  dieWithParent?: boolean;
  /** What to do with the child's stdout/stderr. Default 'pipe' for both. */
  stdout?: 'pipe' | 'ignore';
  stderr?: 'pipe' | 'ignore';
}

export interface SupervisedChild {
  /** The started program's own pid (not the guard's): /proc/PID is the program. */
  readonly pid: number;
  /** The guard between this process and the program, or null when there is none. */
  readonly guardPid: number | null;
  readonly command: string;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** True once the child (and its guard) has exited. */
  readonly exited: boolean;
  /** Resolves once with the program's exit status; safe to call many times. Never rejects. */
  wait(): Promise<ExitInfo>;
  /** Sends a signal to the program if still running; no-op afterwards. */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  terminate(graceMs: number): Promise<ExitInfo>;
}

/**
 * How a child is tied to this process's life:
 * - `guard`: `setpriv --pdeathsig SIGTERM -- timeout --kill-after=1s 0 PROGRAM ...`.
 *   The kernel sends the guard (coreutils `timeout`, which stays root and
 *   never changes uid) SIGTERM when this process dies; it forwards it to the
 *   program and SIGKILLs it (and itself) 1 s later. Needed because the
 *   kernel clears a parent-death signal when a process changes uid, as QEMU
 *   does with `-runas` and Firecracker's jailer does: armed on the program
 *   itself, it would never fire.
 * - `pdeathsig`: `setpriv --pdeathsig SIGKILL` on the program itself (no
 *   `timeout` installed): holds only while the program keeps its uid.
 * - `none`: util-linux `setpriv` missing; only a clean exit of this process
 *   stops its children (exit hook below).
 */
export type OwnerDeathMode = 'guard' | 'pdeathsig' | 'none';

/** After forwarding the owner's death signal, the guard SIGKILLs a program still running this much later. */
export const GUARD_KILL_AFTER = '1s';

const setprivPath = findExecutable('setpriv');
const timeoutPath = findExecutable('timeout');

export function ownerDeathMode(): OwnerDeathMode {
  if (setprivPath === null) return 'none';
  return timeoutPath === null ? 'pdeathsig' : 'guard';
}

/** How long a SIGKILLed program's guard gets to reap it and exit before it is SIGKILLed too. */
const GUARD_KILL_FALLBACK_MS = 1000;

/** Bound on the wait for the guard to fork the program (a loaded 2-core host can take a while). */
const GUARD_FORK_TIMEOUT_MS = 10_000;

const live = new Set<SupervisedChild>();
let exitHookInstalled = false;

/** Children started by this process that have not exited yet. */
export function liveChildren(): ReadonlySet<SupervisedChild> {
  return live;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last line of defence on a clean exit: whatever path ends this process,
  // its VMMs go too (an abrupt death is the guard's job; a guard left
  // behind here gets its parent-death signal once this process is gone).
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone (ESRCH), or a process group not formed yet
  }
}

/**
 * Spawns a long-lived child (argv only). Resolves once the program is
 * running (its own pid is known); throws VmmSpawnFailedError when it cannot
 * start, e.g. the binary is missing. The returned handle must eventually be
 * waited on or terminated by its owner.
 */
export function spawnSupervised(file: string, args: readonly string[], options: SpawnOptions = {}): Promise<SupervisedChild> {
  installExitHook();
  // A wrapper would report a missing binary only as exit code 127: check
  // first so the caller gets a clear error instead of a VM that "exited".
  const resolved = findExecutable(file);
  if (resolved === null) {
    return Promise.reject(new VmmSpawnFailedError(`could not start ${file}: program not found in PATH`));
  }
  const mode = (options.dieWithParent ?? true) ? ownerDeathMode() : 'none';
  const [cmd, argv] =
    mode === 'guard'
      ? [setprivPath!, ['--pdeathsig', 'SIGTERM', '--', timeoutPath!, `--kill-after=${GUARD_KILL_AFTER}`, '0', resolved, ...args]]
      : mode === 'pdeathsig'
        ? [setprivPath!, ['--pdeathsig', 'SIGKILL', '--', resolved, ...args]]
        : [resolved, [...args]];
  const guarded = mode === 'guard';
  return new Promise((resolve, reject) => {
    const proc: ChildProcess = spawn(cmd, argv, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', options.stdout ?? 'pipe', options.stderr ?? 'pipe'],
    });
    let exitInfo: ExitInfo | null = null;
    let killFallback: NodeJS.Timeout | undefined;
    let programPid = -1;
    let programStart: number | null = null;
    const exitPromise = new Promise<ExitInfo>((res) => {
      proc.once('exit', (code, signal) => {
        // `timeout` exits with the program's status and re-raises the
        // signal that killed it, so the guard's exit is the program's.
        exitInfo = { code, signal };
        clearTimeout(killFallback);
        // A guard always reaps its program before it exits; one that was
        // itself killed (by hand, the OOM killer) leaves it orphaned and
        // running while this process would believe it gone: kill it.
        if (guarded && programStart !== null && isSameProcessAlive(programPid, programStart)) signalPid(programPid, 'SIGKILL');
        live.delete(handle);
        res(exitInfo);
      });
    });
    const send = (signal: NodeJS.Signals): void => {
      if (exitInfo !== null) return;
      if (!guarded) {
        proc.kill(signal);
        return;
      }
      if (programPid <= 0) {
        // Not forked yet (or not seen): the guard passes TERM on; KILL ends both.
        proc.kill(signal);
        return;
      }
      // Straight to the program: the guard reaps it before exiting itself,
      // so while the guard runs the pid cannot be reused. Signalling the
      // guard instead would arm its own 1 s SIGKILL and cut a longer grace.
      signalPid(programPid, signal);
      if (signal === 'SIGKILL' && killFallback === undefined) {
        // The guard then reaps the program and dies of the same signal
        // (killing both at once would leave the program's zombie to init).
        // Should the guard hang, its process group (itself and the program,
        // unless that left it) is killed.
        killFallback = setTimeout(() => {
          if (exitInfo !== null) return;
          signalPid(-proc.pid!, 'SIGKILL');
          proc.kill('SIGKILL');
        }, GUARD_KILL_FALLBACK_MS);
        killFallback.unref();
      }
    };
    const handle: SupervisedChild = {
      get pid() {
        return guarded ? programPid : (proc.pid ?? -1);
      },
      get guardPid() {
        return guarded ? (proc.pid ?? null) : null;
      },
      command: file,
      stdout: proc.stdout,
      stderr: proc.stderr,
      get exited() {
        return exitInfo !== null;
      },
      wait: () => exitPromise,
      kill(signal: NodeJS.Signals = 'SIGKILL') {
        send(signal);
      },
      async terminate(graceMs: number) {
        if (exitInfo !== null) return exitInfo;
        send('SIGTERM');
        const timer = setTimeout(() => send('SIGKILL'), graceMs);
        const info = await exitPromise;
        clearTimeout(timer);
        return info;
      },
    };
    proc.once('error', (e: NodeJS.ErrnoException) => {
      live.delete(handle);
      const why = e.code === 'ENOENT' ? `program not found: ${file}` : e.message;
      reject(new VmmSpawnFailedError(`could not start ${file}: ${why}`, { cause: e }));
    });
    proc.once('spawn', () => {
      live.add(handle);
      if (!guarded) {
        resolve(handle);
        return;
      }
      // The program is the guard's only child. Resolve once it has exec'd:
      // before that it is a copy of `timeout`, whose handlers would turn a
      // SIGTERM into exit 143, and /proc/PID would not show the program yet.
      findExecedChild(proc.pid!, { timeoutMs: GUARD_FORK_TIMEOUT_MS, gone: () => exitInfo !== null }).then(
        (pid) => {
          if (pid !== null) {
            programStart = processStartTime(pid);
            programPid = programStart === null ? proc.pid! : pid; // null: it exited already
            resolve(handle);
          } else if (exitInfo !== null) {
            // Exited before we saw it (e.g. exec failed): report the exit
            // through wait(), as an unguarded child would.
            programPid = proc.pid!;
            resolve(handle);
          } else {
            send('SIGKILL');
            reject(new VmmSpawnFailedError(`could not start ${file}: its guard process did not start it within ${GUARD_FORK_TIMEOUT_MS} ms`));
          }
        },
        (err: unknown) => {
          send('SIGKILL');
          reject(new VmmSpawnFailedError(`could not start ${file}: ${(err as Error).message}`, { cause: err }));
        },
      );
    });
  });
}
