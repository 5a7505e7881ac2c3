/**
 * Firecracker's metrics: one JSON object per line, written to the
 * `metrics_path` of PUT /metrics on every FlushMetrics action and every 60 s.
 * Counters in a line are deltas since the previous line. The sink is a
 * regular file (read from where the last read stopped) or a named pipe (read
 * as lines arrive; opened read-write so it never reports end-of-file and
 * Firecracker's non-blocking writes always find a reader).
 */
import { closeSync, constants, openSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import net from 'node:net';

/** One metrics line. Groups are Firecracker's (api_server, latencies_us, vmm, vsock, ...); only the timestamp is always there. */
export interface FirecrackerMetrics {
  utc_timestamp_ms: number;
  latencies_us?: Record<string, number>;
  api_server?: Record<string, number>;
  vmm?: Record<string, number>;
  vsock?: Record<string, number>;
  [group: string]: unknown;
}

export type MetricsSink = 'file' | 'fifo';

/** Lines kept in memory (older ones are dropped; the sink file has them all). */
const HISTORY = 100;

/**
 * Parses complete lines of `text`; returns them, the unterminated rest, and
 * how many lines were not metrics JSON (skipped). Pure.
 */
export function parseMetricsLines(text: string): { metrics: FirecrackerMetrics[]; rest: string; skipped: number } {
  const parts = text.split('\n');
  const rest = parts.pop() ?? '';
  const metrics: FirecrackerMetrics[] = [];
  let skipped = 0;
  for (const line of parts) {
    if (line.trim() === '') continue;
    try {
      const parsed = JSON.parse(line) as unknown;
      if (parsed && typeof parsed === 'object' && typeof (parsed as FirecrackerMetrics).utc_timestamp_ms === 'number') {
        metrics.push(parsed as FirecrackerMetrics);
        continue;
      }
    } catch {
      // counted below
    }
    skipped++;
  }
  return { metrics, rest, skipped };
}

/**
 * Reads one VM's metrics sink. Create it with `openMetricsReader` before
 * Firecracker opens the path; `close()` it when the VM is gone.
 */
export class MetricsReader {
  private readonly history: FirecrackerMetrics[] = [];
  private partial = '';
  private offset = 0;
  private count = 0;
  private skippedLines = 0;
  private readonly waiters = new Set<() => void>();
  private closed = false;

  private constructor(
    readonly path: string,
    readonly sink: MetricsSink,
    private readonly file: FileHandle | null,
    private readonly pipe: net.Socket | null,
  ) {
    pipe?.on('data', (chunk: Buffer) => this.feed(chunk.toString('utf8')));
    pipe?.on('error', () => undefined); // a closed pipe only ends the readings
  }

  /** Opens an existing sink (a regular file or a FIFO created by the caller). Throws the fs error. */
  static async open(path: string, sink: MetricsSink): Promise<MetricsReader> {
    if (sink === 'file') return new MetricsReader(path, sink, await open(path, 'r'), null);
    // O_RDWR: never blocks on open, never sees EOF when Firecracker closes (Linux FIFO semantics).
    const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    try {
      return new MetricsReader(path, sink, null, new net.Socket({ fd, readable: true, writable: false }));
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** The newest line, if any was read. */
  latest(): FirecrackerMetrics | undefined {
    return this.history.at(-1);
  }

  /** Lines read so far (the newest HISTORY of them), oldest first. */
  lines(): readonly FirecrackerMetrics[] {
    return this.history;
  }

  /** How many lines were read since opening. */
  get received(): number {
    return this.count;
  }

  /** Lines that were not metrics JSON. */
  get skipped(): number {
    return this.skippedLines;
  }

  /** File sink: reads what was appended since the last read. FIFO: nothing to do (lines arrive on their own). Never throws after close. */
  async poll(): Promise<void> {
    if (!this.file || this.closed) return;
    for (;;) {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await this.file.read(buf, 0, buf.length, this.offset);
      if (bytesRead === 0) return;
      this.offset += bytesRead;
      this.feed(buf.subarray(0, bytesRead).toString('utf8'));
    }
  }

  /**
   * Resolves with the newest line once more than `after` lines were read
   * (pass `received` from before a FlushMetrics); undefined after
   * `timeoutMs` or on close.
   */
  async waitForLine(after: number, timeoutMs: number): Promise<FirecrackerMetrics | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.poll();
      if (this.count > after) return this.latest();
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) return undefined;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        // A file sink has no events: poll again shortly.
        const timer = setTimeout(wake, this.file ? Math.min(left, 5) : left);
        this.waiters.add(wake);
      });
    }
  }

  /** Releases the file descriptor. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const wake of [...this.waiters]) wake();
    this.pipe?.destroy();
    await this.file?.close().catch(() => undefined);
  }

  private feed(text: string): void {
    const { metrics, rest, skipped } = parseMetricsLines(this.partial + text);
    this.partial = rest;
    this.skippedLines += skipped;
    for (const m of metrics) {
      this.history.push(m);
      if (this.history.length > HISTORY) this.history.shift();
      this.count++;
    }
    if (metrics.length) for (const wake of [...this.waiters]) wake();
  }
}
