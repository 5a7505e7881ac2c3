/**
 * Host-side shapes of the agent's filesystem ops (list_dir, stat, mkdir,
 * remove; docs/agent-protocol.md) and the conversion from their validated
 * wire results. AgentClient owns the calls; this module does no I/O and
 * trusts nothing it was not handed already validated.
 */
import { wireBytes, type DirEntryWire, type FileType, type ListDirResult, type StatResult } from './agent-protocol.js';

export type { FileType } from './agent-protocol.js';

export interface ListDirOptions {
  /** At most this many entries (1..LIST_DIR_MAX_ENTRIES). Default LIST_DIR_DEFAULT_MAX_ENTRIES. */
  maxEntries?: number;
}

export interface MkdirOptions {
  /** Create missing parents too, and succeed when the directory exists. Default false. */
  parents?: boolean;
  /** Mode of the new directory, applied exactly (no umask). Default 0o755 minus the umask. */
  mode?: number;
}

export interface RemoveOptions {
  /** Remove a directory with its contents (symlinks are removed, never followed). Default false. */
  recursive?: boolean;
}

export interface GuestDirEntry {
  /** The name; bytes that are not UTF-8 show as U+FFFD... */
  name: string;
  /** ...and then the exact bytes are here (absent for UTF-8 names). */
  nameBytes?: Buffer;
  type: FileType;
  size: number;
  /** Permission bits (0..0o7777). */
  mode: number;
  mtimeMs: number;
}

export interface GuestDirListing {
  /** Sorted by name. */
  entries: GuestDirEntry[];
  /** The directory holds more entries than were returned. */
  truncated: boolean;
}

export interface GuestFileStat {
  type: FileType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  /** A symlink's target (lossy like GuestDirEntry.name), null otherwise. */
  symlinkTarget: string | null;
  symlinkTargetBytes?: Buffer;
}

function entry(e: DirEntryWire): GuestDirEntry {
  return {
    name: e.name,
    ...(e.name_b64 !== undefined && { nameBytes: wireBytes(e.name_b64) }),
    type: e.type,
    size: e.size,
    mode: e.mode,
    mtimeMs: e.mtime_ms,
  };
}

/** The listing with entries sorted by name (the agent sends directory order). */
export function toListing(r: ListDirResult): GuestDirListing {
  const entries = r.entries.map(entry);
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { entries, truncated: r.truncated };
}

export function toStat(r: StatResult): GuestFileStat {
  return {
    type: r.type,
    size: r.size,
    mode: r.mode,
    uid: r.uid,
    gid: r.gid,
    mtimeMs: r.mtime_ms,
    symlinkTarget: r.symlink_target,
    ...(r.symlink_target_b64 !== undefined && { symlinkTargetBytes: wireBytes(r.symlink_target_b64) }),
  };
}
