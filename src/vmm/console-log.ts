/**
 * A VM's console log file with a size cap: the newest bytes are kept, the
 * oldest dropped, so a guest that floods its serial console cannot fill the
 * host's disk. It owns the file `PATH` and its one rotated predecessor
 * `PATH.1`; it does not read them back and knows nothing about lines.
 *
 * When `PATH` would grow past half the cap, it is renamed to `PATH.1`
 * (replacing the older one) and a new `PATH` is started: the two files
 * together never hold more than `maxBytes`, and at least the newest
 * `maxBytes / 2` bytes are always on disk. Files are created mode 0600
 * (console output may hold secrets the guest printed).
 */
import { createWriteStream, renameSync, statSync, type WriteStream } from 'node:fs';

/** Default of `vmm.console_log_max_bytes`. */
export const DEFAULT_CONSOLE_LOG_MAX_BYTES = 8 * 1024 * 1024;
/** The smallest cap accepted: keeps the rotation from spinning on every chunk. */
export const MIN_CONSOLE_LOG_MAX_BYTES = 64 * 1024;

/** The rotated predecessor of a console log. */
export function rotatedLogPath(path: string): string {
  return `${path}.1`;
}

function existingSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export class CappedLog {
  private stream: WriteStream;
  /** Bytes handed to the current file's stream. */
  private written = 0;
  private readonly half: number;
  /** Streams of rotated files still flushing; writers wait for them too. */
  private readonly retiring = new Set<WriteStream>();
  private waiters: Array<() => void> = [];
  private ended = false;

  /** Opens (appends to) `path`. `maxBytes` >= MIN_CONSOLE_LOG_MAX_BYTES. */
  constructor(
    private readonly path: string,
    maxBytes = DEFAULT_CONSOLE_LOG_MAX_BYTES,
  ) {
    this.half = Math.max(MIN_CONSOLE_LOG_MAX_BYTES, maxBytes) >> 1;
    // An existing file (appended to) counts against the cap too.
    this.written = existingSize(path);
    this.stream = this.open();
  }

  /**
   * Appends `chunk`, keeping only its last maxBytes/2 bytes if it alone is
   * larger. Returns a promise that resolves when the caller may write again
   * (at once unless the file's stream is saturated or a rotated file is
   * still flushing): awaiting it is the backpressure that keeps memory
   * bounded. Writes after end() are dropped.
   */
  write(chunk: Buffer): Promise<void> {
    if (this.ended || chunk.length === 0 || this.stream.destroyed) return Promise.resolve();
    if (chunk.length > this.half) chunk = chunk.subarray(chunk.length - this.half);
    if (this.written + chunk.length > this.half && this.written > 0) this.rotate();
    this.written += chunk.length;
    const ok = this.stream.write(chunk);
    if (ok && this.retiring.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      if (ok) return; // only waiting for retiring streams
      this.stream.once('drain', () => this.release());
    });
  }

  /** Flushes and closes the file; safe to call more than once. Resolves when written. */
  end(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      this.stream.end();
    }
    const streams = [this.stream, ...this.retiring];
    return Promise.all(streams.map((s) => (s.closed ? Promise.resolve() : new Promise<void>((r) => s.once('close', () => r()))))).then(() => this.release());
  }

  private open(): WriteStream {
    const stream = createWriteStream(this.path, { flags: 'a', mode: 0o600 });
    // A full disk or a removed directory must not crash the VM's owner; the
    // console is then simply not logged, and writers must not wait forever.
    stream.on('error', () => {
      this.retiring.delete(stream);
      this.release();
    });
    return stream;
  }

  private rotate(): void {
    try {
      // The old stream's fd follows the renamed inode, so its pending bytes
      // (older than anything written next) land in PATH.1 where they belong.
      renameSync(this.path, rotatedLogPath(this.path));
    } catch {
      // Removed under us (by hand, or another process's pruning): start a
      // fresh PATH anyway. Appending on would grow an unlinked file without
      // a bound, invisible in the directory.
    }
    const old = this.stream;
    this.retiring.add(old);
    old.once('close', () => {
      this.retiring.delete(old);
      this.release();
    });
    old.end();
    this.stream = this.open();
    this.written = 0;
  }

  /** Wakes writers once nothing is saturated any more. */
  private release(): void {
    if (this.retiring.size > 0 || (this.stream.writableNeedDrain && !this.ended && !this.stream.destroyed)) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
