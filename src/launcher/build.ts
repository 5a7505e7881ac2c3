/**
 * Compiling `tfc-vmm-exec` for this host, once per data dir and source
 * version: `<cacheDir>/tfc-vmm-exec-<hash>`, built with the system gcc
 * (installed by scripts/setup.sh for the guest agent) from the source in
 * source.ts, written to a temporary name and renamed into place so
 * concurrent tfc processes never run a half-written binary.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findExecutable, runCommand } from '../process/index.js';
import { VMM_EXEC_SOURCE } from './source.js';

export type VmmExecAvailability = { kind: 'launcher'; path: string } | { kind: 'direct'; reason: string };

/** gcc flags; part of the cache key. Static first (no dynamic loader at every VMM start), then dynamic. */
const GCC_FLAG_SETS: readonly (readonly string[])[] = [
  ['-static', '-O2', '-Wall', '-Wextra', '-s'],
  ['-O2', '-Wall', '-Wextra', '-s'],
];

/** A failed build is not retried by other processes for this long (gcc costs 100s of ms); `force` retries at once. */
export const FAILED_BUILD_RETRY_MS = 10 * 60 * 1000;

const BUILD_TIMEOUT_MS = 120_000;

/** 16 hex digits of SHA-256 over the source and the flags: a changed launcher gets a new file name. */
export function vmmExecDigest(source = VMM_EXEC_SOURCE): string {
  return createHash('sha256').update(source).update('\0').update(JSON.stringify(GCC_FLAG_SETS)).digest('hex').slice(0, 16);
}

/** Where the launcher for this source lives in `cacheDir`. */
export function vmmExecPath(cacheDir: string, source = VMM_EXEC_SOURCE): string {
  return join(cacheDir, `tfc-vmm-exec-${vmmExecDigest(source)}`);
}

/**
 * Whether `path` is a launcher this process may run as the VMM's first
 * program: a regular executable file of this user that nobody else can
 * write (it runs with this process's privileges, often root).
 */
export function isTrustedExecutable(path: string): boolean {
  try {
    const st = lstatSync(path);
    const uid = process.getuid?.() ?? st.uid;
    return st.isFile() && st.uid === uid && (st.mode & 0o022) === 0 && (st.mode & 0o100) !== 0;
  } catch {
    return false;
  }
}

interface FailureMarker {
  at: number;
  reason: string;
}

function readFailure(path: string): FailureMarker | null {
  try {
    const marker = JSON.parse(readFileSync(path, 'utf8')) as Partial<FailureMarker>;
    return typeof marker.at === 'number' && typeof marker.reason === 'string' ? { at: marker.at, reason: marker.reason } : null;
  } catch {
    return null;
  }
}

const memo = new Map<string, Promise<VmmExecAvailability>>();

/**
 * The launcher for `cacheDir`, compiled on first use. Never throws: when it
 * cannot be built (no gcc, no C library headers, a read-only data dir) it
 * answers `direct` with the reason, and callers start VMMs without it.
 * Memoised per cache dir and process; `force` (tfc doctor) ignores the
 * memo and a recent failure and tries again.
 */
export function ensureVmmExec(cacheDir: string, options: { force?: boolean } = {}): Promise<VmmExecAvailability> {
  const cached = memo.get(cacheDir);
  if (cached && !options.force) return cached;
  const result = build(cacheDir, options.force ?? false);
  memo.set(cacheDir, result);
  return result;
}

async function build(cacheDir: string, force: boolean): Promise<VmmExecAvailability> {
  const path = vmmExecPath(cacheDir);
  if (isTrustedExecutable(path)) return { kind: 'launcher', path };
  const failedPath = `${path}.failed`;
  const failure = force ? null : readFailure(failedPath);
  if (failure && Date.now() - failure.at < FAILED_BUILD_RETRY_MS) return { kind: 'direct', reason: failure.reason };
  const gcc = findExecutable('gcc');
  if (!gcc) return { kind: 'direct', reason: 'gcc not found, so tfc-vmm-exec cannot be built (apt-get install gcc libc6-dev)' };
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    let errors = '';
    for (const flags of GCC_FLAG_SETS) {
      // The source on stdin: no file to locate or clean up.
      const out = await runCommand(gcc, [...flags, '-x', 'c', '-o', tmp, '-'], { input: VMM_EXEC_SOURCE, timeoutMs: BUILD_TIMEOUT_MS, allowFailure: true });
      if (out.code === 0) {
        chmodSync(tmp, 0o755);
        // Smoke test: without a program it must refuse with its own message (exit 126).
        const smoke = await runCommand(tmp, [], { timeoutMs: 10_000, allowFailure: true });
        if (smoke.code !== 126 || !smoke.stderr.toString().includes('tfc-vmm-exec:')) {
          throw new Error(`the built launcher does not run as expected (exit ${smoke.code}: ${smoke.stderr.toString().trim()})`);
        }
        renameSync(tmp, path);
        rmSync(failedPath, { force: true });
        return { kind: 'launcher', path };
      }
      errors = out.stderr.toString().trim().split('\n').slice(-3).join(' / ');
    }
    throw new Error(`gcc failed: ${errors} (apt-get install gcc libc6-dev)`);
  } catch (err) {
    const reason = `tfc-vmm-exec could not be built in ${cacheDir}: ${(err as Error).message}`;
    try {
      writeFileSync(failedPath, JSON.stringify({ at: Date.now(), reason } satisfies FailureMarker));
    } catch {
      // a read-only cache dir: every process retries, which is all we can do
    }
    return { kind: 'direct', reason };
  } finally {
    rmSync(tmp, { force: true });
  }
}
