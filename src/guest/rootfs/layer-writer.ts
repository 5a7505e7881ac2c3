/**
 * Writes one layer's (non-whiteout) tar entries under the root: regular
 * files, directories, symlinks and hardlinks with their mode, owner and
 * mtime; device nodes and fifos are skipped (the guest has devtmpfs).
 * Every write is no-follow: parents are checked to be real directories
 * (safe-path.ts), an existing last component is removed first and files
 * are created with O_EXCL|O_NOFOLLOW. Counts bytes and entries against the
 * limits and throws ImageBuildFailedError when one is exceeded.
 */

import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lutimesSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import type { ReadEntry } from 'tar';
import { ImageBuildFailedError } from '../../errors/index.js';
import { checkParents, entryPath, lstatOrNull, under } from './safe-path.js';
import { applyWhiteout, whiteoutOf } from './oci-whiteouts.js';

export interface ImportStats {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  whiteouts: number;
  skipped: Array<{ path: string; reason: string }>;
}

export interface ExtractLimits {
  maxUnpackedBytes: number;
  maxEntries: number;
}

/** Most skipped entries listed one by one; the rest are summed up in a last row. */
export const MAX_SKIPPED_LISTED = 1000;

/** What persists across the layers of one import. */
export class ExtractState {
  bytes = 0;
  entries = 0;
  private skippedOver = 0;
  readonly stats: ImportStats = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, whiteouts: 0, skipped: [] };
  /** Directory mtimes, set at the end (writing into a directory changes its mtime). */
  readonly dirTimes = new Map<string, Date>();
  /** Relative paths known to be real directories; cleared whenever something is removed. */
  readonly known = new Set<string>();
  /** Paths the current layer wrote, and their ancestors (whiteouts keep them). */
  readonly touched = new Set<string>();
  readonly canChown = process.getuid?.() === 0;

  constructor(
    readonly root: string,
    readonly limits: ExtractLimits,
  ) {}

  /** Call before each layer. */
  startLayer(): void {
    this.touched.clear();
  }

  /** Records that the current layer wrote `parts` (and so its ancestors). */
  touch(parts: string[]): void {
    for (let i = parts.length; i > 0; i--) {
      const rel = parts.slice(0, i).join('/');
      if (i < parts.length && this.touched.has(rel)) break;
      this.touched.add(rel);
    }
  }

  skip(path: string, reason: string): void {
    if (this.stats.skipped.length < MAX_SKIPPED_LISTED) {
      this.stats.skipped.push({ path, reason });
      return;
    }
    this.skippedOver++;
    const summary = { path: '...', reason: `${this.skippedOver} more entries skipped, not listed` };
    if (this.stats.skipped.length === MAX_SKIPPED_LISTED) this.stats.skipped.push(summary);
    else this.stats.skipped[MAX_SKIPPED_LISTED] = summary;
  }

  countEntry(): void {
    if (++this.entries > this.limits.maxEntries) {
      throw new ImageBuildFailedError(`the image has more than ${this.limits.maxEntries} entries, the limit; it is not a usable root filesystem`);
    }
  }

  countBytes(n: number): void {
    this.bytes += n;
    if (this.bytes > this.limits.maxUnpackedBytes) {
      throw new ImageBuildFailedError(
        `the image unpacks to more than ${this.limits.maxUnpackedBytes} bytes (maxUnpackedBytes); make the image smaller or raise the limit`,
      );
    }
  }
}

/** Reads and discards the rest of an entry (rejects if the walk is aborted meanwhile). */
async function drain(entry: ReadEntry): Promise<void> {
  for await (const _ of entry as AsyncIterable<Buffer>) {
    /* discard */
  }
}

/** Removes whatever sits at `abs` (no follow); clears the directory cache when it was a directory. */
function clear(state: ExtractState, abs: string, keepDir: boolean): 'dir' | 'none' | 'other' {
  const st = lstatOrNull(abs);
  if (st === null) return 'none';
  if (st.isDirectory()) {
    if (keepDir) return 'dir';
    state.known.clear();
    rmSync(abs, { recursive: true, force: true });
    return 'none';
  }
  unlinkSync(abs);
  return 'other';
}

function mode(entry: ReadEntry, fallback: number): number {
  return (entry.mode ?? fallback) & 0o7777;
}

/** The entry's uid/gid, or 0 for values no filesystem can store (hostile headers). */
function owner(entry: ReadEntry): [number, number] {
  const ok = (id: number | undefined): number => (Number.isInteger(id) && id! >= 0 && id! < 0xffffffff ? id! : 0);
  return [ok(entry.uid), ok(entry.gid)];
}

/** The entry's mtime when it is a usable date. */
function mtime(entry: ReadEntry): Date | undefined {
  return entry.mtime instanceof Date && Number.isFinite(entry.mtime.getTime()) ? entry.mtime : undefined;
}

async function writeFile(state: ExtractState, abs: string, entry: ReadEntry): Promise<void> {
  clear(state, abs, false);
  const fd = openSync(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    for await (const chunk of entry as AsyncIterable<Buffer>) {
      state.countBytes(chunk.length);
      for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off);
    }
    // chown before chmod: chown clears setuid/setgid bits.
    if (state.canChown) fchownSync(fd, ...owner(entry));
    fchmodSync(fd, mode(entry, 0o644));
    const when = mtime(entry);
    if (when) futimesSync(fd, when, when);
  } finally {
    closeSync(fd);
  }
}

function writeDir(state: ExtractState, abs: string, rel: string, entry: ReadEntry): void {
  if (clear(state, abs, true) !== 'dir') mkdirSync(abs, { mode: 0o700 });
  const fd = openSync(abs, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    if (state.canChown) fchownSync(fd, ...owner(entry));
    fchmodSync(fd, mode(entry, 0o755));
  } finally {
    closeSync(fd);
  }
  state.known.add(rel);
  const when = mtime(entry);
  if (when) state.dirTimes.set(rel, when);
}

function writeSymlink(state: ExtractState, abs: string, target: string, entry: ReadEntry): void {
  clear(state, abs, false);
  // The target is stored as is: it is resolved inside the guest, never here.
  symlinkSync(target, abs);
  if (state.canChown) lchownSync(abs, ...owner(entry));
  const when = mtime(entry);
  if (when) lutimesSync(abs, when, when);
}

/** Returns null when linked, else why the entry was skipped. */
function writeHardlink(state: ExtractState, abs: string, entry: ReadEntry): string | null {
  const target = entryPath(entry.linkpath ?? '');
  if ('skip' in target || target.parts.length === 0) return `hardlink target ${entry.linkpath}: ${'skip' in target ? target.skip : 'is the root'}`;
  const why = checkParents(state.root, target.parts, state.known, false);
  if (why !== null) return `hardlink target ${entry.linkpath}: ${why}`;
  const targetAbs = under(state.root, target.parts);
  const st = lstatOrNull(targetAbs);
  if (st === null) return `hardlink target ${entry.linkpath} does not exist`;
  if (st.isDirectory()) return `hardlink target ${entry.linkpath} is a directory`;
  const existing = lstatOrNull(abs);
  if (existing && existing.ino === st.ino && existing.dev === st.dev) return null;
  clear(state, abs, false);
  // link(2) does not follow a symlink target on Linux: it links the symlink itself.
  linkSync(targetAbs, abs);
  return null;
}

/**
 * Writes (or, for a whiteout, applies) one entry under the root. Always
 * consumes the entry's data. Throws
 * ImageBuildFailedError when a limit is exceeded or the filesystem refuses
 * a write; entries that are unsafe or unsupported are recorded as skipped.
 */
export async function writeEntry(state: ExtractState, entry: ReadEntry): Promise<void> {
  const path = entryPath(entry.path);
  if ('skip' in path) {
    state.countEntry();
    state.skip(entry.path, path.skip);
    return drain(entry);
  }
  if (path.parts.length === 0) return drain(entry);
  state.countEntry();
  const whiteout = whiteoutOf(path.parts);
  if (whiteout !== null) {
    await drain(entry);
    if (whiteout.kind === 'ignored') return;
    const why = applyWhiteout(state.root, whiteout, state.known, state.touched);
    if (why === null) state.stats.whiteouts++;
    else state.skip(entry.path, `whiteout not applied: ${why}`);
    return;
  }
  const rel = path.parts.join('/');
  const type = entry.type;
  const unsupported: Record<string, string> = {
    CharacterDevice: 'character device (the guest has devtmpfs)',
    BlockDevice: 'block device (the guest has devtmpfs)',
    FIFO: 'fifo',
  };
  const writable = ['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link'];
  if (!writable.includes(type)) {
    state.skip(rel, unsupported[type] ?? `unsupported entry type ${type}`);
    return drain(entry);
  }
  try {
    const why = checkParents(state.root, path.parts, state.known, true);
    if (why !== null) {
      state.skip(rel, why);
      return drain(entry);
    }
    const abs = under(state.root, path.parts);
    if (type === 'Directory') {
      writeDir(state, abs, rel, entry);
      state.stats.dirs++;
    } else if (type === 'SymbolicLink') {
      if ((entry.linkpath ?? '').includes('\0')) {
        state.skip(rel, 'symlink target contains NUL');
        return drain(entry);
      }
      writeSymlink(state, abs, entry.linkpath ?? '', entry);
      state.stats.symlinks++;
    } else if (type === 'Link') {
      const skipped = writeHardlink(state, abs, entry);
      if (skipped === null) state.stats.hardlinks++;
      else state.skip(rel, skipped);
    } else {
      await writeFile(state, abs, entry);
      state.stats.files++;
    }
    state.touch(path.parts);
  } catch (err) {
    if (err instanceof ImageBuildFailedError) throw err;
    throw new ImageBuildFailedError(`cannot write ${rel} from the image: ${(err as Error).message}`, { cause: err });
  }
  return drain(entry);
}
