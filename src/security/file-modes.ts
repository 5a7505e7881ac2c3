/**
 * File modes of what tfc keeps: the data dir is 0700, the database and
 * console logs 0600, golden snapshot files root-owned 0444 (no clone, and
 * no VM uid, can write the memory its siblings map). Only changes modes and
 * owners of files tfc made; never follows a path outside the data dir.
 */
import { chmodSync, closeSync, constants, fchmodSync, fchownSync, fstatSync, lstatSync, mkdirSync, openSync } from 'node:fs';

const isRoot = process.getuid?.() === 0;

/** mkdir -p with mode 0700, and tightens the directory if it already existed more open. Idempotent. */
export function ensurePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  tighten(path, 0o700);
}

/**
 * Creates `path` empty with mode 0600 when missing, else sets 0600 (on a
 * file this process owns). For files that other code then opens for
 * append (console logs, the database). Idempotent.
 */
export function ensurePrivateFile(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
  tighten(path, 0o600);
}

/** chmod to `mode` when the file is looser and ours to change; never throws. */
export function tighten(path: string, mode: number): void {
  try {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return;
    if ((st.mode & 0o777) !== mode && (isRoot || st.uid === process.getuid?.())) chmodSync(path, mode);
  } catch {
    // gone or not ours: nothing to tighten
  }
}

/**
 * Makes snapshot files read-only for everyone and (as root) owned by root,
 * so a VM uid that made them (Firecracker writes its snapshot as the jail
 * user) cannot change them afterwards. Works on the file itself through a
 * descriptor opened without following symlinks: a path a VM uid could have
 * replaced by a link (to /etc/shadow, say) is left alone, never chowned or
 * chmodded. Idempotent; never throws.
 */
export function sealReadOnly(paths: readonly string[]): void {
  for (const path of paths) {
    let fd: number | undefined;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      if (!fstatSync(fd).isFile()) continue;
      if (isRoot) fchownSync(fd, 0, 0);
      fchmodSync(fd, 0o444);
    } catch {
      // missing, a symlink (ELOOP), or not ours: doctor and the tests check the result
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}

/** True when `path` is a regular file nobody but root could write (mode without write bits for group/other, owner root or no owner write). */
export function isSealed(path: string): boolean {
  try {
    const st = lstatSync(path);
    return (st.mode & 0o222) === 0 && st.uid === 0;
  } catch {
    return false;
  }
}
