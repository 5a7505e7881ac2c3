/**
 * Path rules for writing hostile layer entries under a root directory:
 * entry names are split into components and refused when absolute or when
 * they hold `..`; parent directories are walked with lstat and never
 * followed when they are symlinks. Callers then create the last component
 * with no-follow calls (O_EXCL / O_NOFOLLOW, symlink, link), so no write
 * can land outside the root.
 *
 * Metadata calls here and in the writers are synchronous on purpose: each
 * takes microseconds in the kernel, while a libuv thread-pool round trip
 * per call made extraction several times slower (measured); the event loop
 * still runs between data chunks.
 */

import { lstatSync, mkdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';

/** Longest name of one path component (ext4 limit). */
const MAX_NAME_BYTES = 255;
/** Longest entry path accepted. */
const MAX_PATH_BYTES = 4096;

export type EntryPath = { parts: string[] } | { skip: string };

/**
 * Splits a tar entry name into components relative to the root. Leading
 * "./" and "." components are dropped; an absolute name, a `..` component,
 * a NUL or an over-long name is refused with a reason. The root itself is
 * `{ parts: [] }`.
 */
export function entryPath(raw: string): EntryPath {
  if (raw.includes('\0')) return { skip: 'path contains NUL' };
  if (raw.startsWith('/')) return { skip: 'absolute path' };
  if (Buffer.byteLength(raw) > MAX_PATH_BYTES) return { skip: 'path too long' };
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { skip: 'path contains ..' };
  if (parts.some((p) => Buffer.byteLength(p) > MAX_NAME_BYTES)) return { skip: 'name too long' };
  return { parts };
}

/** Joins components under root (components are already checked). */
export function under(root: string, parts: string[]): string {
  return parts.length === 0 ? root : join(root, ...parts);
}

export function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

/**
 * Makes sure every parent of `parts` is a real directory under root,
 * creating missing ones (mode 0755, owned by the caller) when `create`.
 * Returns null when they are, else why not (a parent is a symlink, which is
 * never followed, or a non-directory, or missing when `create` is false).
 * `known` caches directories already checked; callers clear it when they
 * remove a directory.
 */
export function checkParents(root: string, parts: string[], known: Set<string>, create: boolean): string | null {
  for (let i = 1; i < parts.length; i++) {
    const rel = parts.slice(0, i).join('/');
    if (known.has(rel)) continue;
    const abs = under(root, parts.slice(0, i));
    const st = lstatOrNull(abs);
    if (st === null) {
      if (!create) return `parent ${rel} does not exist`;
      mkdirSync(abs, { mode: 0o755 });
    } else if (st.isSymbolicLink()) {
      return `parent ${rel} is a symlink (not followed)`;
    } else if (!st.isDirectory()) {
      return `parent ${rel} is not a directory`;
    }
    known.add(rel);
  }
  return null;
}
