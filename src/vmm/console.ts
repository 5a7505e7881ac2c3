import { createWriteStream, type WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { VmBootTimeoutError, VmmExitedError } from '../errors/index.js';

type LineListener = (line: string) => void;

/**
 * Taps a VMM's serial console stream: appends everything to the per-VM log
 * file, keeps the last lines for error messages, and lets boot steps wait
 * for marker lines printed by the guest init.
 */
export class ConsoleTap {
  private readonly log: WriteStream;
  private readonly tail: string[] = [];
  private partial = '';
  private readonly listeners = new Set<LineListener>();
  private ended = false;
  private endReason = 'console closed';

  constructor(logPath: string, private readonly maxTail = 40) {
    this.log = createWriteStream(logPath, { flags: 'a' });
    this.log.on('error', () => undefined); // a full disk must not crash the VM owner
  }

  /** Feeds a stream (VMM stdout/stderr) into the tap; may be called for several streams. */
  attach(stream: Readable, prefix = ''): void {
    stream.on('data', (chunk: Buffer) => {
      this.log.write(prefix ? prefixLines(chunk.toString('utf8'), prefix) : chunk);
      this.onText(chunk.toString('utf8'));
    });
  }

  /** Marks the console as finished (the VMM exited); pending waits reject with `reason`. */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.endReason = reason;
    if (this.partial) this.emit(this.partial);
    this.partial = '';
    for (const l of [...this.listeners]) l('\u0000end');
    this.log.end();
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
        if (line === '\u0000end') {
          clearTimeout(timer);
          this.listeners.delete(listener);
          reject(new VmmExitedError(`${this.endReason} before the guest printed ${pattern}; last console lines:\n${this.lastLines()}`));
        } else if (pattern.test(line)) {
          clearTimeout(timer);
          this.listeners.delete(listener);
          resolve(line);
        }
      };
      this.listeners.add(listener);
    });
  }

  private onText(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.emit(line.replace(/\r$/, ''));
  }

  private emit(line: string): void {
    this.tail.push(line);
    if (this.tail.length > this.maxTail) this.tail.shift();
    for (const l of [...this.listeners]) l(line);
  }
}

function prefixLines(text: string, prefix: string): string {
  return text.replace(/^(?=.)/gm, prefix);
}
