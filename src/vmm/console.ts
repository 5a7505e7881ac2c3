/**
 * The tap on a VMM's serial console (and its own stderr), shared by both
 * drivers: appends everything to the VM's capped console log, keeps the last
 * lines for error messages, and lets boot steps wait for marker lines printed
 * by the guest init. It does not start or stop the VMM.
 *
 * Everything here is bounded, because the guest writes the console and may
 * be hostile: a line longer than `maxLineBytes` is cut into pieces of at most
 * that size (never re-scanned as it grows), the log file is capped with its
 * newest bytes kept (console-log.ts), and the VMM's output stream is only
 * read as fast as the log file takes it, so a flooding guest waits on its
 * own serial port instead of growing the host process.
 */
import type { Readable } from 'node:stream';
import { VmBootTimeoutError, VmmExitedError } from '../errors/index.js';
import { CappedLog, DEFAULT_CONSOLE_LOG_MAX_BYTES } from './console-log.js';

export { DEFAULT_CONSOLE_LOG_MAX_BYTES, rotatedLogPath } from './console-log.js';

/** Longest console line kept as one line; longer ones are split. */
export const CONSOLE_MAX_LINE_BYTES = 8 * 1024;

/** Told to listeners when the console ends: a symbol, so no line the guest prints can fake it. */
const CONSOLE_END = Symbol('console end');
type LineListener = (line: string | typeof CONSOLE_END) => void;

export interface ConsoleTapOptions {
  /** Cap of the log file and its rotated predecessor together (vmm.console_log_max_bytes). Default 8 MiB. */
  logMaxBytes?: number;
  /** Longest line before it is split. Default CONSOLE_MAX_LINE_BYTES. */
  maxLineBytes?: number;
  /** Lines kept for lastLines(). Default 40. */
  maxTail?: number;
}

/**
 * Splits a byte stream into lines of at most `max` bytes. Holds at most
 * `max` bytes of an unfinished line, as slices of the chunks it came in.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  /** The last line was cut at `max` bytes: a newline right after it ends nothing. */
  private cut = false;

  constructor(
    private readonly max: number,
    private readonly onLine: (line: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      while (start < end) {
        const n = Math.min(this.max - this.size, end - start);
        this.parts.push(chunk.subarray(start, start + n));
        this.size += n;
        start += n;
        if (this.size === this.max) {
          this.flush();
          this.cut = true;
        }
      }
      if (nl < 0) return;
      if (this.size > 0 || !this.cut) this.flush();
      this.cut = false;
      start = nl + 1;
    }
  }

  /** Emits the unfinished line, if any. */
  flush(): void {
    if (this.size === 0 && this.parts.length === 0 && this.cut) return;
    const line = Buffer.concat(this.parts, this.size).toString('utf8').replace(/\r$/, '');
    this.parts = [];
    this.size = 0;
    this.cut = false;
    this.onLine(line);
  }

  get pending(): boolean {
    return this.size > 0;
  }
}

export class ConsoleTap {
  private readonly log: CappedLog;
  private readonly tail: string[] = [];
  private readonly maxTail: number;
  private readonly maxLineBytes: number;
  private readonly splitters = new Set<LineSplitter>();
  private readonly listeners = new Set<LineListener>();
  private ended = false;
  private endReason = 'console closed';

  /** Opens (appends to) the log at `logPath`, created mode 0600. */
  constructor(logPath: string, options: ConsoleTapOptions = {}) {
    this.log = new CappedLog(logPath, options.logMaxBytes ?? DEFAULT_CONSOLE_LOG_MAX_BYTES);
    this.maxTail = options.maxTail ?? 40;
    this.maxLineBytes = options.maxLineBytes ?? CONSOLE_MAX_LINE_BYTES;
  }

  /**
   * Feeds a stream (VMM stdout/stderr) into the tap; may be called for
   * several streams, each with its own line state. Lines of a stream with a
   * `prefix` carry it in the log file (not in waitFor/lastLines). The stream
   * is consumed until it ends, paced by the log file.
   */
  attach(stream: Readable, prefix = ''): void {
    const splitter = new LineSplitter(this.maxLineBytes, (line) => this.emit(line));
    this.splitters.add(splitter);
    const marker = prefix ? Buffer.from(prefix, 'utf8') : undefined;
    let atLineStart = true;
    void (async () => {
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          if (this.ended) continue; // keep draining so the VMM never blocks on a dead tap
          splitter.push(chunk);
          const out = marker ? prefixLines(chunk, marker, atLineStart) : chunk;
          atLineStart = chunk[chunk.length - 1] === 0x0a;
          await this.log.write(out);
        }
      } catch {
        // the stream broke because the VMM went away; end() reports why
      }
    })();
  }

  /** Marks the console as finished (the VMM exited); pending waits reject with `reason`. */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.endReason = reason;
    for (const s of this.splitters) if (s.pending) s.flush();
    for (const l of [...this.listeners]) l(CONSOLE_END);
    void this.log.end();
  }

  lastLines(n = 20): string {
    return this.tail.slice(-n).join('\n');
  }

  /** Resolves with the first line matching `pattern`; rejects on timeout or end. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string> {
    if (this.ended) return Promise.reject(new VmmExitedError(`${this.endReason}\n${this.lastLines()}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new VmBootTimeoutError(`guest did not print ${pattern} within ${timeoutMs} ms; last console lines:\n${this.lastLines()}`));
      }, timeoutMs);
      const listener: LineListener = (line) => {
        if (line === CONSOLE_END) {
          clearTimeout(timer);
          this.listeners.delete(listener);
          reject(new VmmExitedError(`${this.endReason} before the guest printed ${pattern}; last console lines:\n${this.lastLines()}`));
        } else if (typeof line === 'string' && pattern.test(line)) {
          clearTimeout(timer);
          this.listeners.delete(listener);
          resolve(line);
        }
      };
      this.listeners.add(listener);
    });
  }

  private emit(line: string): void {
    this.tail.push(line);
    if (this.tail.length > this.maxTail) this.tail.shift();
    for (const l of [...this.listeners]) l(line);
  }
}

/** Inserts `prefix` at the start of every line that begins in `chunk`. */
function prefixLines(chunk: Buffer, prefix: Buffer, atLineStart: boolean): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  if (atLineStart) parts.push(prefix);
  for (;;) {
    const nl = chunk.indexOf(0x0a, start);
    if (nl < 0 || nl === chunk.length - 1) break;
    parts.push(chunk.subarray(start, nl + 1), prefix);
    start = nl + 1;
  }
  parts.push(chunk.subarray(start));
  return Buffer.concat(parts);
}
