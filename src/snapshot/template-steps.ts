/**
 * What happens to a golden snapshot's template between agent-ready and the
 * pause: the profile's warmup, a `sync` of its disks, and (after the
 * snapshot) keeping its scratch disk. Each step throws a typed error.
 */
import { linkSync, lstatSync } from 'node:fs';
import { InvalidStateError, SnapshotWarmupFailedError } from '../errors/index.js';
import type { ExecResult } from '../guest/agent-client.js';
import { copyScratchDisk } from '../vm/disks.js';
import type { Vm } from '../vm/vm.js';

/**
 * Runs the profile's warmup argv in the template (no shell), bounded by
 * `timeoutMs`. Throws SnapshotWarmupFailedError naming the command, its
 * exit code and the tail of its stderr when it exits non-zero, cannot be
 * started or times out.
 */
export async function runWarmup(template: Vm, argv: readonly string[], timeoutMs: number): Promise<void> {
  const key = `profiles.${template.profileName}.warmup`;
  const shown = JSON.stringify(argv);
  let result: ExecResult;
  try {
    result = await template.exec({ argv: [...argv], timeoutMs });
  } catch (err) {
    throw new SnapshotWarmupFailedError(
      `warmup ${shown} of the golden snapshot could not run: ${err instanceof Error ? err.message : String(err)}; fix ${key}`,
      { cause: err, details: { argv: [...argv], exit_code: null, stderr_tail: '' } },
    );
  }
  if (result.exitCode === 0 && !result.timedOut) return;
  const tail = tailOf(result.stderr.toString('utf8'));
  const how = result.timedOut
    ? `timed out after ${timeoutMs} ms (boot_timeout_ms)`
    : `exited with code ${result.exitCode ?? `null (signal ${result.signal ?? '?'})`}`;
  throw new SnapshotWarmupFailedError(`warmup ${shown} (${key}) of the golden snapshot ${how}${tail ? `; stderr ends: ${tail}` : ''}`, {
    details: { argv: [...argv], exit_code: result.exitCode, stderr_tail: tail },
  });
}

/**
 * Flushes the guest's dirty pages to its disks with `argv`: the busybox
 * stage 1 copied to /.tfc on images with a root filesystem (which may have
 * no `sync`), the initramfs's own otherwise.
 */
export async function syncGuest(template: Vm, argv: string[], timeoutMs: number): Promise<void> {
  const result = await template.exec({ argv, timeoutMs });
  if (result.exitCode !== 0) {
    const tail = tailOf(result.stderr.toString('utf8'));
    throw new SnapshotWarmupFailedError(`${argv.join(' ')} in the golden snapshot's template exited with code ${result.exitCode}: ${tail}`, {
      details: { argv, exit_code: result.exitCode, stderr_tail: tail },
    });
  }
}

/**
 * Keeps the template's scratch disk (in its run dir, removed with it) in
 * the snapshot directory: a hard link (same filesystem, the data dir), or a
 * sparse copy when the run dir is elsewhere.
 */
export async function keepScratchDisk(from: string, to: string): Promise<void> {
  // The run dir belongs to the VM's uid, which could have put a symlink
  // there: link(2) does not follow one, and only a regular file is kept.
  try {
    linkSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    if (!lstatSync(from).isFile()) throw new InvalidStateError(`the template's scratch disk ${from} is not a regular file`);
    await copyScratchDisk(from, to);
  }
  if (!lstatSync(to).isFile()) throw new InvalidStateError(`the template's scratch disk ${from} is not a regular file`);
}

/** The last 500 characters of a command's output, trimmed. */
function tailOf(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > 500 ? `…${trimmed.slice(-500)}` : trimmed;
}
