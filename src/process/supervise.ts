import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { VmmSpawnFailedError } from '../errors/index.js';
import { findExecutable } from './which.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Ask the kernel to SIGKILL the child if this process dies without
   * cleaning up (via `setpriv --pdeathsig`, when util-linux is present).
   * Default true.
   */
  dieWithParent?: boolean;
  /** What to do with the child's stdout/stderr. Default 'pipe' for both. */
  stdout?: 'pipe' | 'ignore';
  stderr?: 'pipe' | 'ignore';
}

export interface SupervisedChild {
  readonly pid: number;
  readonly command: string;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** True once the child has exited. */
  readonly exited: boolean;
  /** Resolves once with the exit status; safe to call many times. Never rejects. */
  wait(): Promise<ExitInfo>;
  /** Sends a signal if still running; no-op afterwards. */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  terminate(graceMs: number): Promise<ExitInfo>;
}

const live = new Set<SupervisedChild>();
let exitHookInstalled = false;

/** Children started by this process that have not exited yet. */
export function liveChildren(): ReadonlySet<SupervisedChild> {
  return live;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last line of defence: whatever path ends this process, its VMMs go too.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

const setprivPath = findExecutable('setpriv');

/**
 * Spawns a long-lived child (argv only). Resolves once the child is running
 * (its pid is known); throws VmmSpawnFailedError when it cannot start,
 * e.g. the binary is missing. The returned handle must eventually be waited
 * on or terminated by its owner.
 */
export function spawnSupervised(file: string, args: readonly string[], options: SpawnOptions = {}): Promise<SupervisedChild> {
  installExitHook();
  // setpriv would report a missing binary only as exit code 127: check first
  // so the caller gets a clear error instead of a VM that "exited".
  const resolved = findExecutable(file);
  if (resolved === null) {
    return Promise.reject(new VmmSpawnFailedError(`could not start ${file}: program not found in PATH`));
  }
  const useSetpriv = (options.dieWithParent ?? true) && setprivPath !== null;
  const [cmd, argv] = useSetpriv ? [setprivPath!, ['--pdeathsig', 'SIGKILL', '--', resolved, ...args]] : [resolved, [...args]];
  return new Promise((resolve, reject) => {
    const proc: ChildProcess = spawn(cmd, argv, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', options.stdout ?? 'pipe', options.stderr ?? 'pipe'],
    });
    let exitInfo: ExitInfo | null = null;
    const exitPromise = new Promise<ExitInfo>((res) => {
      proc.once('exit', (code, signal) => {
        exitInfo = { code, signal };
        live.delete(handle);
        res(exitInfo);
      });
    });
    const handle: SupervisedChild = {
      get pid() {
        return proc.pid ?? -1;
      },
      command: file,
      stdout: proc.stdout,
      stderr: proc.stderr,
      get exited() {
        return exitInfo !== null;
      },
      wait: () => exitPromise,
      kill(signal: NodeJS.Signals = 'SIGKILL') {
        if (exitInfo === null) proc.kill(signal);
      },
      async terminate(graceMs: number) {
        if (exitInfo !== null) return exitInfo;
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
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
      resolve(handle);
    });
  });
}
