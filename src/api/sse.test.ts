import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProcessRecord } from '../processes/index.js';
import { formatSseComment, formatSseEvent, SseEventFormatter, streamProcess } from './sse.js';

/** Parses SSE text into events (id, event, data as parsed JSON). */
function parse(text: string): Array<{ id?: number; event: string; data: unknown }> {
  return text
    .split('\n\n')
    .filter((block) => block && !block.startsWith(':'))
    .map((block) => {
      const fields = Object.fromEntries(block.split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]));
      return { ...(fields.id !== undefined ? { id: Number(fields.id) } : {}), event: fields.event, data: JSON.parse(fields.data) };
    });
}

/** A response whose reader takes `highWaterMark` bytes before write() says "wait", and only drains when told. */
class SlowResponse extends Writable {
  text = '';
  private pending: Array<() => void> = [];
  constructor(highWaterMark: number) {
    super({ highWaterMark, decodeStrings: false });
  }
  override _write(chunk: string | Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    this.pending.push(done);
  }
  /** The reader catches up. */
  read(): void {
    const p = this.pending;
    this.pending = [];
    p.forEach((d) => d());
  }
}

describe('SSE formatting', () => {
  it('writes id, event and one line of JSON data, whatever the payload holds', () => {
    const text = formatSseEvent({ id: 7, event: 'stdout', data: { data: 'a\nb\r\n\n: not a comment' } });
    expect(text).toBe('id: 7\nevent: stdout\ndata: {"data":"a\\nb\\r\\n\\n: not a comment"}\n\n');
    expect(parse(text)).toEqual([{ id: 7, event: 'stdout', data: { data: 'a\nb\r\n\n: not a comment' } }]);
    expect(formatSseComment('heart\nbeat')).toBe(': heart beat\n\n');
  });

  it('joins a UTF-8 character split across chunks, and base64 keeps exact bytes', () => {
    const euro = Buffer.from('€'); // 3 bytes
    const utf8 = new SseEventFormatter('utf8');
    const first = parse(utf8.format({ id: 1, type: 'stdout', data: euro.subarray(0, 2) }));
    const second = parse(utf8.format({ id: 2, type: 'stdout', data: euro.subarray(2) }));
    expect([first[0].data, second[0].data]).toEqual([{ data: '' }, { data: '€' }]);
    const b64 = new SseEventFormatter('base64');
    expect(parse(b64.format({ id: 1, type: 'stderr', data: Buffer.from([0xff, 0]) }))[0].data).toEqual({ data: '/wA=' });
    expect(parse(b64.format({ id: 9, type: 'exit', exit: { exitCode: null, signal: 'SIGKILL', durationMs: 3 } }))).toEqual([
      { id: 9, event: 'exit', data: { exit_code: null, signal: 'SIGKILL', duration_ms: 3 } },
    ]);
  });
});

describe('streamProcess', () => {
  it('sends events as they are logged, resumes after an id, and ends after the exit', async () => {
    const rec = new ProcessRecord(5, ['x'], false);
    rec.appendOutput('stdout', Buffer.from('one'));
    const res = new SlowResponse(1 << 20);
    let ended = 0;
    streamProcess(rec, res as unknown as ServerResponse, { afterId: 0, encoding: 'utf8', onEnd: () => ended++ });
    res.read();
    expect(parse(res.text).map((e) => e.id)).toEqual([1]);
    rec.appendOutput('stderr', Buffer.from('two'));
    rec.appendExit({ exitCode: 0, signal: null, durationMs: 1 });
    res.read();
    await new Promise((r) => setImmediate(r));
    expect(parse(res.text).map((e) => [e.id, e.event])).toEqual([
      [1, 'stdout'],
      [2, 'stderr'],
      [3, 'exit'],
    ]);
    expect(res.writableEnded).toBe(true);
    expect(ended).toBe(1);

    const resumed = new SlowResponse(1 << 20);
    streamProcess(rec, resumed as unknown as ServerResponse, { afterId: 2, encoding: 'utf8' });
    resumed.read();
    expect(parse(resumed.text).map((e) => e.id)).toEqual([3]);
  });

  it('does not queue output for a slow reader: it waits for drain and then gets a gap for what the log dropped', async () => {
    const rec = new ProcessRecord(5, ['x'], false, { maxBytes: 100, maxEvents: 1000 });
    const res = new SlowResponse(16);
    streamProcess(rec, res as unknown as ServerResponse, { afterId: 0, encoding: 'utf8' });
    rec.appendOutput('stdout', Buffer.from('first'));
    const sentBeforeDrain = res.text.length + res.writableLength;
    // The reader does not read while 1000 more chunks arrive: nothing more is written.
    for (let i = 0; i < 1000; i++) rec.appendOutput('stdout', Buffer.from('0123456789'));
    expect(res.text.length + res.writableLength).toBe(sentBeforeDrain);
    rec.appendExit({ exitCode: 0, signal: null, durationMs: 1 });
    res.read();
    await new Promise((r) => setImmediate(r));
    res.read();
    const events = parse(res.text);
    expect(events[0]).toMatchObject({ id: 1, event: 'stdout' });
    expect(events[1]).toMatchObject({ event: 'gap', data: { from_id: 2, exact: true } });
    expect(events.at(-1)).toMatchObject({ id: 1002, event: 'exit' });
    const lost = (events[1].data as { lost_bytes: number }).lost_bytes;
    const received = events.filter((e) => e.event === 'stdout').reduce((n, e) => n + (e.data as { data: string }).data.length, 0);
    expect(received + lost).toBe(5 + 10_000);
  });

  it('sends heartbeat comments while the process is quiet, and stops them when the client goes', async () => {
    const rec = new ProcessRecord(5, ['x'], false);
    const res = new SlowResponse(1 << 20);
    let ended = 0;
    streamProcess(rec, res as unknown as ServerResponse, { afterId: 0, encoding: 'utf8', heartbeatMs: 20, onEnd: () => ended++ });
    await new Promise((r) => setTimeout(r, 70));
    res.read();
    expect(res.text).toMatch(/^(: heartbeat\n\n){2,}$/);
    res.destroy();
    await new Promise((r) => setImmediate(r));
    expect(ended).toBe(1);
    const before = res.text;
    await new Promise((r) => setTimeout(r, 50));
    expect(res.text).toBe(before);
  });

  it('ends with an error event when the record is dropped (VM released)', () => {
    const rec = new ProcessRecord(5, ['x'], false);
    const res = new SlowResponse(1 << 20);
    streamProcess(rec, res as unknown as ServerResponse, { afterId: 0, encoding: 'utf8' });
    rec.drop('VM vm-1 was released or stopped');
    res.read();
    expect(parse(res.text)).toEqual([{ event: 'error', data: { code: 'PROCESS_NOT_FOUND', message: 'VM vm-1 was released or stopped' } }]);
    expect(res.writableEnded).toBe(true);
  });
});
