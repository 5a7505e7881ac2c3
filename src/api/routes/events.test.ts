import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { readSse, type SseMessage } from '../../client/sse.js';
import { EventBus, EVENT_TYPES } from '../../events/index.js';
import { FAKE_TOKEN, fakeDeps, fakeVm } from '../../testing/fake-api-deps.js';
import { buildApp } from '../app.js';
import { streamEvents } from './events.js';

const auth = { authorization: `Bearer ${FAKE_TOKEN}` };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(5);
  }
};

interface Opened {
  status: number;
  next(): Promise<SseMessage>;
  /** Messages until `count` have arrived (or the stream ended). */
  take(count: number): Promise<SseMessage[]>;
  close(): void;
  json?: { error: { code: string; message: string; details?: Record<string, unknown> } };
}

describe('GET /v1/events', () => {
  let app: FastifyInstance | undefined;
  let base = '';
  const streams: Opened[] = [];

  const start = async (bus?: EventBus, requestTimeoutMs?: number) => {
    app = await buildApp({ ...fakeDeps(fakeVm(), requestTimeoutMs ? { requestTimeoutMs } : {}), ...(bus ? { events: bus } : {}) });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  };
  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    await app?.close();
    app = undefined;
  });

  const open = async (query = '', headers: Record<string, string> = {}): Promise<Opened> => {
    const abort = new AbortController();
    const res = await fetch(`${base}/v1/events${query}`, { headers: { ...auth, ...headers }, signal: abort.signal });
    if (res.status !== 200) {
      const json = (await res.json()) as Opened['json'];
      return { status: res.status, json, next: () => Promise.reject(new Error('no stream')), take: async () => [], close: () => undefined };
    }
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const messages = readSse(res.body!);
    const opened: Opened = {
      status: 200,
      async next() {
        const r = await messages.next();
        if (r.done) throw new Error('the stream ended');
        return r.value;
      },
      async take(count) {
        const out: SseMessage[] = [];
        while (out.length < count) out.push(await opened.next());
        return out;
      },
      close: () => abort.abort(),
    };
    streams.push(opened);
    return opened;
  };
  const body = (m: SseMessage) => JSON.parse(m.data) as Record<string, unknown>;

  it('starts with hello at the last id, then sends each event with its id, type and JSON data as published', async () => {
    const bus = new EventBus();
    bus.publish('vm.failed', { driver: 'qemu', code: 'VMM_EXITED' });
    await start(bus);
    const s = await open();
    expect(await s.next()).toEqual({ id: 1, event: 'hello', data: JSON.stringify({ last_id: 1 }) });
    const published = bus.publish('vm.state', { vm_id: 'vm-1', from: 'creating', to: 'booting', reason: 'cold boot' });
    const m = await s.next();
    expect(m).toMatchObject({ id: 2, event: 'vm.state' });
    expect(body(m)).toEqual({ id: 2, type: 'vm.state', time: published.time, data: { vm_id: 'vm-1', from: 'creating', to: 'booting', reason: 'cold boot' } });
  });

  it('sends only the types asked for', async () => {
    const bus = new EventBus();
    await start(bus);
    const s = await open('?types=vm.state,allocation');
    await s.next(); // hello
    bus.publish('pool', { pool: 'p', ready: 1, booting: 0, allocated: 0, target: 1 });
    bus.publish('allocation', { pool: 'p', vm_id: 'vm-1', ms: 3 });
    bus.publish('release', { pool: 'p', vm_id: 'vm-1', reason: 'released' });
    bus.publish('vm.state', { vm_id: 'vm-1', from: 'running', to: 'stopping' });
    expect((await s.take(2)).map((m) => [m.id, m.event])).toEqual([
      [2, 'allocation'],
      [4, 'vm.state'],
    ]);
  });

  it('replays the events after Last-Event-ID (header or query), then follows live, without duplicates', async () => {
    const bus = new EventBus();
    for (let i = 0; i < 5; i++) bus.publish('allocation', { pool: 'p', vm_id: `vm-${i}`, ms: i });
    await start(bus);
    const s = await open('', { 'last-event-id': '2' });
    expect((await s.take(3)).map((m) => m.id)).toEqual([3, 4, 5]);
    bus.publish('release', { pool: 'p', vm_id: 'vm-0', reason: 'released' });
    expect(await s.next()).toMatchObject({ id: 6, event: 'release' });
    const q = await open('?last_event_id=4&types=allocation,release');
    expect((await q.take(2)).map((m) => [m.id, m.event])).toEqual([
      [5, 'allocation'],
      [6, 'release'],
    ]);
    // From 0: everything the ring holds.
    expect((await (await open('?last_event_id=0')).take(6)).map((m) => m.id)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('says how many events the ring no longer holds (gap) before replaying the rest', async () => {
    const bus = new EventBus(4);
    for (let i = 0; i < 10; i++) bus.publish('allocation', { pool: 'p', vm_id: `vm-${i}`, ms: i });
    await start(bus);
    const s = await open('', { 'last-event-id': '2' });
    const [gap, ...rest] = await s.take(5);
    // 3..6 were dropped; 7..10 are kept. The gap's id is the last one missed, so a reconnect after it does not count them again.
    expect(gap).toEqual({ id: 6, event: 'gap', data: JSON.stringify({ missed: 4 }) });
    expect(rest.map((m) => m.id)).toEqual([7, 8, 9, 10]);
  });

  it('sends reset with the last id when Last-Event-ID is beyond it (the daemon restarted), then continues live', async () => {
    const bus = new EventBus();
    for (let i = 0; i < 3; i++) bus.publish('vm.failed', { driver: 'qemu', code: 'VMM_EXITED' });
    await start(bus);
    const s = await open('', { 'last-event-id': '50' });
    expect(await s.next()).toEqual({ id: 3, event: 'reset', data: JSON.stringify({ last_id: 3 }) });
    bus.publish('vm.failed', { driver: 'qemu', code: 'AGENT_TIMEOUT' });
    expect(await s.next()).toMatchObject({ id: 4, event: 'vm.failed' });
  });

  it('refuses unknown types and bad ids with INVALID_ARGUMENT naming what is valid', async () => {
    await start(new EventBus());
    const bad = await open('?types=vm.state,vm.exploded');
    expect(bad.status).toBe(400);
    expect(bad.json!.error.code).toBe('INVALID_ARGUMENT');
    expect(bad.json!.error.message).toContain('"vm.exploded"');
    for (const t of EVENT_TYPES) expect(bad.json!.error.message).toContain(t);
    expect((await open('?types=')).json!.error.message).toContain('unknown event type ""');
    const id = await open('', { 'last-event-id': 'abc' });
    expect(id.status).toBe(400);
    expect(id.json!.error.message).toContain('Last-Event-ID');
    expect((await open('?last_event_id=-1')).status).toBe(400);
    expect((await fetch(`${base}/v1/events`)).status).toBe(401);
  });

  it('answers 404 NOT_FOUND with a reason when the server has no event bus', async () => {
    await start();
    const r = await open();
    expect(r.status).toBe(404);
    expect(r.json!.error).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('no event stream') });
  });

  it('serves at most 64 streams at once, and every closed stream gives its listener and slot back', async () => {
    const bus = new EventBus();
    await start(bus);
    const many = await Promise.all(Array.from({ length: 64 }, () => open()));
    expect(many.every((s) => s.status === 200)).toBe(true);
    await until(() => bus.listenerCount === 64);
    const refused = await open();
    expect(refused.status).toBe(503);
    expect(refused.json!.error).toMatchObject({ code: 'EVENT_STREAMS_EXHAUSTED', details: { max: 64 } });
    many[0].close();
    await until(() => bus.listenerCount === 63);
    expect((await open()).status).toBe(200);
    for (const s of streams) s.close();
    await until(() => bus.listenerCount === 0);
  });

  it('outlives the server request timeout (which bounds receiving a request, not answering it)', async () => {
    const bus = new EventBus();
    await start(bus, 1000);
    const s = await open();
    await s.next();
    await sleep(2500);
    bus.publish('vm.failed', { driver: 'qemu', code: 'VMM_EXITED' });
    expect(await s.next()).toMatchObject({ id: 1, event: 'vm.failed' });
  });

  it('ends its streams when the server closes', async () => {
    const bus = new EventBus();
    await start(bus);
    const s = await open();
    await s.next();
    await until(() => bus.listenerCount === 1);
    await app!.close();
    app = undefined;
    expect(bus.listenerCount).toBe(0);
    await expect(s.next()).rejects.toThrow();
  });

  it('is declared in the OpenAPI document with its query', async () => {
    await start(new EventBus());
    const doc = (await (await fetch(`${base}/v1/openapi.json`)).json()) as {
      paths: Record<string, { get: { summary: string; parameters: Array<{ name: string; in: string }> } }>;
    };
    const op = doc.paths['/v1/events'].get;
    expect(op.summary).toMatch(/Server-Sent Events/);
    expect(op.parameters.filter((p) => p.in === 'query').map((p) => p.name)).toEqual(['types', 'last_event_id']);
  });
});

/** A response whose reader takes `highWaterMark` bytes before write() says "wait", and only reads when told. */
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
  read(): void {
    const p = this.pending;
    this.pending = [];
    p.forEach((d) => d());
  }
}

/** Parses SSE text into (id, event) pairs; comments are dropped. */
const ids = (text: string) =>
  text
    .split('\n\n')
    .filter((b) => b && !b.startsWith(':'))
    .map((b) => {
      const f = Object.fromEntries(b.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
      return [Number(f.id), f.event] as const;
    });

describe('streamEvents (back-pressure)', () => {
  const event = (bus: EventBus, i: number) => bus.publish('allocation', { pool: 'p', vm_id: `vm-${i}`, ms: i });

  it('a reader that falls behind gets everything later from the ring, exactly once and in order', async () => {
    const bus = new EventBus();
    const res = new SlowResponse(256);
    streamEvents(bus, res as unknown as ServerResponse, { afterId: 0, maxBacklogEvents: 100 });
    for (let i = 0; i < 60; i++) event(bus, i);
    // Nothing is queued beyond what the socket took before it said wait.
    expect(res.writableLength).toBeLessThan(256 + 200);
    for (let round = 0; round < 100 && ids(res.text).length < 60; round++) {
      res.read();
      await sleep(1);
    }
    expect(ids(res.text).map(([id]) => id)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(bus.listenerCount).toBe(1);
  });

  it('closes the stream (and unsubscribes) once more than maxBacklogEvents wait', async () => {
    const bus = new EventBus();
    const res = new SlowResponse(256);
    let ended = 0;
    let overflow: { events: number; bytes: number } | undefined;
    streamEvents(bus, res as unknown as ServerResponse, { maxBacklogEvents: 50, onEnd: () => ended++, onOverflow: (b) => (overflow = b) });
    for (let i = 0; i < 200; i++) event(bus, i);
    expect(res.destroyed).toBe(true);
    expect(ended).toBe(1);
    expect(overflow!.events).toBe(51);
    expect(bus.listenerCount).toBe(0);
    const sent = ids(res.text).length;
    expect(sent).toBeLessThan(10);
  });

  it('closes the stream once more than maxBacklogBytes wait', () => {
    const bus = new EventBus();
    const res = new SlowResponse(256);
    let overflow: { events: number; bytes: number } | undefined;
    streamEvents(bus, res as unknown as ServerResponse, { maxBacklogBytes: 4096, onOverflow: (b) => (overflow = b) });
    for (let i = 0; i < 200 && !res.destroyed; i++) event(bus, i);
    expect(res.destroyed).toBe(true);
    expect(overflow!.bytes).toBeGreaterThan(4096);
    expect(overflow!.bytes).toBeLessThan(4096 + 500);
  });

  it('filtered-out events do not count against the backlog', () => {
    const bus = new EventBus();
    const res = new SlowResponse(64);
    streamEvents(bus, res as unknown as ServerResponse, { maxBacklogEvents: 10, types: new Set(['vm.failed'] as const) });
    for (let i = 0; i < 500; i++) event(bus, i);
    expect(res.destroyed).toBe(false);
    expect(bus.listenerCount).toBe(1);
  });

  it('sends heartbeats while quiet and stops everything when the client goes', async () => {
    const bus = new EventBus();
    const res = new SlowResponse(1 << 20);
    let ended = 0;
    streamEvents(bus, res as unknown as ServerResponse, { heartbeatMs: 20, onEnd: () => ended++ });
    await sleep(70);
    // Each read lets the next buffered write through.
    for (let i = 0; i < 4; i++) {
      res.read();
      await sleep(1);
    }
    expect(res.text).toMatch(/^id: 0\nevent: hello\ndata: \{"last_id":0\}\n\n(: heartbeat\n\n){2,}$/);
    res.destroy();
    await sleep(1);
    expect(ended).toBe(1);
    expect(bus.listenerCount).toBe(0);
    const before = res.text;
    await sleep(50);
    event(bus, 1);
    expect(res.text).toBe(before);
  });
});
