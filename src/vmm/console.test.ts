import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { CappedLog, MIN_CONSOLE_LOG_MAX_BYTES, rotatedLogPath } from './console-log.js';
import { ConsoleTap, LineSplitter } from './console.js';

const dir = mkdtempSync(join(tmpdir(), 'tfc-console-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const logPath = () => join(dir, `vm-${n++}.console.log`);

function lines(max: number, chunks: Array<string | Buffer>): string[] {
  const out: string[] = [];
  const s = new LineSplitter(max, (l) => out.push(l));
  for (const c of chunks) s.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  if (s.pending) s.flush();
  return out;
}

describe('LineSplitter', () => {
  it('splits on newlines across chunks and strips a trailing CR', () => {
    expect(lines(100, ['ab', 'c\r\nde\n', '\nf'])).toEqual(['abc', 'de', '', 'f']);
  });

  it('cuts a long line into pieces of at most max bytes, without an empty piece at the newline', () => {
    expect(lines(4, ['abcdefgh\n', 'ij\n'])).toEqual(['abcd', 'efgh', 'ij']);
    expect(lines(4, ['abcdefghi'])).toEqual(['abcd', 'efgh', 'i']);
  });

  it('holds no more than max bytes of an endless line', () => {
    const out: string[] = [];
    const s = new LineSplitter(1000, (l) => out.push(l));
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let i = 0; i < 160; i++) s.push(chunk); // 10 MiB without a newline
    expect(out.length).toBe(Math.floor((160 * 64 * 1024) / 1000));
    expect(out.every((l) => l.length === 1000)).toBe(true);
  });
});

async function settle(log: CappedLog): Promise<void> {
  await log.end();
}

describe('CappedLog', () => {
  it('keeps the newest bytes within the cap, rotating into PATH.1', async () => {
    const path = logPath();
    const max = MIN_CONSOLE_LOG_MAX_BYTES;
    const log = new CappedLog(path, max);
    let written = '';
    for (let i = 0; i < 200; i++) {
      const piece = `${String(i).padStart(4, '0')}${'.'.repeat(1019)}\n`; // 1 KiB each
      written += piece;
      await log.write(Buffer.from(piece));
    }
    await settle(log);
    const current = readFileSync(path, 'utf8');
    const older = readFileSync(rotatedLogPath(path), 'utf8');
    expect(current.length + older.length).toBeLessThanOrEqual(max);
    expect(current.length + older.length).toBeGreaterThanOrEqual(max / 2);
    // What is kept is exactly the newest part of what was written, in order.
    expect(written.endsWith(older + current)).toBe(true);
    expect(current.endsWith('0199' + '.'.repeat(1019) + '\n')).toBe(true);
  });

  it('keeps only the tail of a single chunk larger than half the cap', async () => {
    const path = logPath();
    const log = new CappedLog(path, MIN_CONSOLE_LOG_MAX_BYTES);
    const big = Buffer.concat([Buffer.alloc(100_000, 'a'), Buffer.from('END')]);
    await log.write(big);
    await settle(log);
    const kept = readFileSync(path, 'utf8');
    expect(kept.length).toBe(MIN_CONSOLE_LOG_MAX_BYTES / 2);
    expect(kept.endsWith('aEND')).toBe(true);
  });

  it('creates the log readable by its owner only', async () => {
    const path = logPath();
    const log = new CappedLog(path);
    await log.write(Buffer.from('hi\n'));
    await settle(log);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('keeps working (dropping output, never waiting forever) when the directory is gone', async () => {
    const path = join(dir, 'missing', 'x.log');
    const log = new CappedLog(path);
    await log.write(Buffer.from('a'));
    await log.write(Buffer.from('b'));
    await settle(log);
    expect(existsSync(path)).toBe(false);
  });

  it('stays within its cap when the log is removed under a running VM (a fresh file is started)', async () => {
    const path = logPath();
    const log = new CappedLog(path, MIN_CONSOLE_LOG_MAX_BYTES);
    await log.write(Buffer.alloc(1000, 'a'));
    while (!existsSync(path)) await new Promise((r) => setTimeout(r, 5)); // the stream opens asynchronously
    rmSync(path);
    const chunk = Buffer.alloc(4096, 'b');
    for (let i = 0; i < 256; i++) await log.write(chunk); // 1 MiB, 16x the cap
    await settle(log);
    const kept = statSync(path).size + (existsSync(rotatedLogPath(path)) ? statSync(rotatedLogPath(path)).size : 0);
    expect(kept).toBeLessThanOrEqual(MIN_CONSOLE_LOG_MAX_BYTES);
    expect(kept).toBeGreaterThan(0);
  });

  it('counts a log that already exists against the cap', async () => {
    const path = logPath();
    writeFileSync(path, Buffer.alloc(MIN_CONSOLE_LOG_MAX_BYTES / 2, 'o'));
    const log = new CappedLog(path, MIN_CONSOLE_LOG_MAX_BYTES);
    await log.write(Buffer.from('new\n'));
    await settle(log);
    expect(readFileSync(path, 'utf8')).toBe('new\n');
    expect(statSync(rotatedLogPath(path)).size).toBe(MIN_CONSOLE_LOG_MAX_BYTES / 2);
  });
});

describe('ConsoleTap', () => {
  it('waits for marker lines and reports the last lines', async () => {
    const path = logPath();
    const tap = new ConsoleTap(path);
    const out = new PassThrough();
    tap.attach(out);
    const seen = tap.waitFor(/^ready \d+$/, 5000);
    out.write('boot\nready ');
    out.write('42\nmore');
    expect(await seen).toBe('ready 42');
    tap.end('QEMU exited');
    expect(tap.lastLines(3)).toBe('boot\nready 42\nmore');
    await expect(tap.waitFor(/x/, 10)).rejects.toThrow(/QEMU exited/);
  });

  it('a guest printing NUL + "end" cannot fake the end of the console', async () => {
    const tap = new ConsoleTap(logPath());
    const out = new PassThrough();
    tap.attach(out);
    const seen = tap.waitFor(/^TFC_READY$/, 5000);
    out.write('\u0000end\nTFC_READY\n');
    expect(await seen).toBe('TFC_READY');
    tap.end('QEMU exited');
  });

  it('prefixes the lines of a second stream in the log only', async () => {
    const path = logPath();
    const tap = new ConsoleTap(path);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    tap.attach(stdout);
    tap.attach(stderr, 'qemu: ');
    stderr.write('warn one\nwarn');
    stderr.write(' two\n');
    await tap.waitFor(/warn two/, 5000);
    stdout.end();
    stderr.end();
    tap.end('done');
    await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(path, 'utf8')).toBe('qemu: warn one\nqemu: warn two\n');
    expect(tap.lastLines(2)).toBe('warn one\nwarn two');
  });

  it('splits a flood without newlines into capped lines and caps the log', async () => {
    const path = logPath();
    const tap = new ConsoleTap(path, { logMaxBytes: 256 * 1024, maxLineBytes: 4096 });
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let sent = 0;
    const flood = Readable.from(
      (function* () {
        for (; sent < 20 * 1024 * 1024; sent += chunk.length) yield chunk;
      })(),
    );
    tap.attach(flood);
    await new Promise((r) => flood.once('end', r));
    const marker = tap.waitFor(/^done$/, 5000);
    const tail = new PassThrough();
    tap.attach(tail);
    tail.write('\ndone\n'); // a stream that has its own line state: the marker is whole
    await marker;
    tap.end('stopped');
    await new Promise((r) => setTimeout(r, 100));
    const kept = statSync(path).size + (existsSync(rotatedLogPath(path)) ? statSync(rotatedLogPath(path)).size : 0);
    expect(kept).toBeLessThanOrEqual(256 * 1024);
    expect(kept).toBeGreaterThanOrEqual(128 * 1024);
    expect(
      tap
        .lastLines(3)
        .split('\n')
        .map((l) => l.length),
    ).toEqual([4096, 0, 4]);
  });

  it('reads the VMM stream only as fast as the log takes it (backpressure)', async () => {
    // A readable that counts how much was pulled from it: with the log
    // stalled (its stream never drains), the tap must stop pulling.
    const path = logPath();
    const tap = new ConsoleTap(path);
    const log = (tap as unknown as { log: { stream: { write: (c: Buffer) => boolean } } }).log;
    log.stream.write = () => false; // a disk that never catches up
    let pulled = 0;
    const source = new Readable({
      highWaterMark: 64 * 1024,
      read() {
        pulled += 64 * 1024;
        this.push(Buffer.alloc(64 * 1024, 'y'));
      },
    });
    tap.attach(source);
    await new Promise((r) => setTimeout(r, 200));
    expect(pulled).toBeLessThan(1024 * 1024);
    source.destroy();
    tap.end('stopped');
  });
});
