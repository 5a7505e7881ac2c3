/**
 * The output of `BINARY --version`, cached per binary file so a one-shot
 * `tfc vm run` does not exec the VMM just to read its version (30-120 ms
 * on a busy host). Keyed by the binary's real path, size, modification
 * time (ns) and inode: replacing or upgrading the binary changes the key.
 * Kept in memory (shared by the drivers of a process) and in a small JSON file in
 * the data dir; an unreadable, corrupt or oversized file is ignored and
 * rewritten on the next miss; writes are atomic (temporary file + rename),
 * and a failed write only costs the next process an exec.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Entries kept in the file (oldest written dropped first). */
export const VERSION_CACHE_MAX_ENTRIES = 32;
/** A cached output longer than this is cut (a version banner is a few lines). */
export const VERSION_OUTPUT_MAX_CHARS = 4096;
/** A file larger than this is treated as corrupt (32 entries of at most 4 KiB fit well below). */
const FILE_MAX_BYTES = 256 * 1024;
const FORMAT = 1;

/** What identifies one binary file's contents without reading them. */
export interface BinaryIdentity {
  realpath: string;
  size: number;
  /** Modification time in nanoseconds, as a decimal string. */
  mtimeNs: string;
  ino: number;
  dev: number;
}

/** The identity of the file behind `path` (symlinks followed); null when it cannot be read. */
export function binaryIdentity(path: string): BinaryIdentity | null {
  try {
    const realpath = realpathSync(path);
    const st = statSync(realpath, { bigint: true });
    return { realpath, size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ino: Number(st.ino), dev: Number(st.dev) };
  } catch {
    return null;
  }
}

function keyOf(id: BinaryIdentity): string {
  return [id.realpath, id.size, id.mtimeNs, id.ino, id.dev].join('|');
}

interface CacheFile {
  format: number;
  entries: Record<string, { output: string; at: number }>;
}

/** In-memory entries per cache file, shared by every VersionCache of that file in this process. */
const memories = new Map<string, Map<string, string>>();

/** Drops the in-memory entries (tests). */
export function clearVersionMemory(): void {
  for (const memory of memories.values()) memory.clear();
}

/**
 * `--version` outputs per binary. Safe to share
 * between drivers and to use from several processes at once (the last
 * writer wins; a lost entry costs one exec).
 */
export class VersionCache {
  private readonly memory: Map<string, string>;

  /** `file` null: this instance's memory only. */
  constructor(private readonly file: string | null) {
    let memory = file ? memories.get(file) : undefined;
    if (!memory) {
      memory = new Map();
      if (file) memories.set(file, memory);
    }
    this.memory = memory;
  }

  /**
   * The cached output for `binary`, or `run()`'s result (then cached). A
   * binary whose identity cannot be read is not cached. Throws what `run`
   * throws (a failure is never cached).
   */
  async output(binary: string, run: () => Promise<string>): Promise<string> {
    const id = binaryIdentity(binary);
    if (!id) return run();
    const key = keyOf(id);
    const known = this.memory.get(key) ?? this.readFile()?.entries[key]?.output;
    if (known !== undefined) {
      this.memory.set(key, known);
      return known;
    }
    const output = (await run()).slice(0, VERSION_OUTPUT_MAX_CHARS);
    // The binary changed while it ran: its output may belong to either file.
    const after = binaryIdentity(binary);
    if (after && keyOf(after) === key) {
      this.memory.set(key, output);
      this.store(key, output);
    }
    return output;
  }

  /** The file's contents, or null when it is missing, unreadable, too large or not in this format. */
  readFile(): CacheFile | null {
    if (!this.file) return null;
    try {
      if (statSync(this.file).size > FILE_MAX_BYTES) return null;
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as Partial<CacheFile>;
      if (parsed.format !== FORMAT || typeof parsed.entries !== 'object' || parsed.entries === null || Array.isArray(parsed.entries)) return null;
      const entries: CacheFile['entries'] = {};
      for (const [key, value] of Object.entries(parsed.entries)) {
        const v = value as Partial<{ output: unknown; at: unknown }> | null;
        if (v && typeof v.output === 'string' && typeof v.at === 'number') entries[key] = { output: v.output, at: v.at };
      }
      return { format: FORMAT, entries };
    } catch {
      return null;
    }
  }

  private store(key: string, output: string): void {
    if (!this.file) return;
    const current = this.readFile() ?? { format: FORMAT, entries: {} };
    current.entries[key] = { output, at: Date.now() };
    const kept = Object.entries(current.entries)
      .sort((a, b) => b[1].at - a[1].at)
      .slice(0, VERSION_CACHE_MAX_ENTRIES);
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      writeFileSync(tmp, JSON.stringify({ format: FORMAT, entries: Object.fromEntries(kept) } satisfies CacheFile), { mode: 0o600 });
      renameSync(tmp, this.file);
    } catch {
      rmSync(tmp, { force: true }); // a read-only data dir: the next process runs --version again
    }
  }
}
