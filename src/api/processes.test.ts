import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isErrorCode } from '../errors/index.js';
import { readSse, type SseMessage } from '../cli/sse-client.js';
import { canRunFakeVms, compileFakeGuest, openFakeRuntime, type FakeRuntime } from '../testing/fake-runtime.js';
import type { Vm } from '../vm/index.js';
import { listenFakeVmApi } from '../testing/fake-vm-api.js';

// The processes API on the fake driver: the real guest agent (compiled for
// this host) runs the processes, so spawn, SSE output, stdin, signals and
// ptys take their real paths through agent, registry and HTTP.
const TOKEN = 'processes-test-token-0123';
const auth = { authorization: `Bearer ${TOKEN}` };

if (!canRunFakeVms) console.warn('processes API tests skipped: gcc is not installed');

describe.skipIf(!canRunFakeVms)('processes API (fake driver, real agent)', () => {
  let guest: Awaited<ReturnType<typeof compileFakeGuest>>;
  let rt: FakeRuntime;
  let vm: Vm;
  let app: FastifyInstance;
  let base = '';

  beforeAll(async () => {
    guest = await compileFakeGuest();
    rt = openFakeRuntime(guest.agentBinary);
    ({ vm, app, base } = await listenFakeVmApi(rt, TOKEN));
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await rt?.close();
    guest?.remove();
  });

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}/v1/vms/${vm.id}${path}`, {
      method,
      headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  const spawn = async (body: unknown): Promise<number> => {
    const r = await api('POST', '/processes', body);
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    return r.json.pid;
  };
  /** Opens the output stream; `headers` may carry Last-Event-ID. */
  const open = async (pid: number, query = '', headers: Record<string, string> = {}, signal?: AbortSignal) => {
    const res = await fetch(`${base}/v1/vms/${vm.id}/processes/${pid}/output${query}`, { headers: { ...auth, ...headers }, ...(signal ? { signal } : {}) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    return readSse(res.body!);
  };
  const collect = async (stream: AsyncGenerator<SseMessage>) => {
    const out: Array<SseMessage & { at: number }> = [];
    for await (const m of stream) out.push({ ...m, at: performance.now() });
    return out;
  };
  const text = (events: SseMessage[], kind = 'stdout') =>
    events
      .filter((e) => e.event === kind)
      .map((e) => JSON.parse(e.data).data)
      .join('');

  it('streams output in order as it arrives, before the process exits, and ends after the exit event', async () => {
    const pid = await spawn({ cmd: ['sh', '-c', 'echo one; sleep 0.6; echo two >&2; sleep 0.6; echo three; exit 3'] });
    const started = performance.now();
    const events = await collect(await open(pid));
    expect(events.map((e) => e.event)).toEqual(['stdout', 'stderr', 'stdout', 'exit']);
    expect(events.map((e) => e.id)).toEqual([1, 2, 3, 4]);
    expect(text(events)).toBe('one\nthree\n');
    expect(text(events, 'stderr')).toBe('two\n');
    expect(JSON.parse(events[3].data)).toMatchObject({ exit_code: 3, signal: null });
    // The first line arrived well before the process ended (it sleeps 1.2 s after it).
    expect(events[3].at - events[0].at).toBeGreaterThan(900);
    expect(events[0].at - started).toBeLessThan(events[3].at - started - 900);
    const list = await api('GET', '/processes');
    expect(list.json.processes).toContainEqual(expect.objectContaining({ pid, cmd: expect.any(Array), pty: false, running: false, exit_code: 3 }));
  });

  it('resumes after Last-Event-ID: a client that disconnects gets the rest exactly once', async () => {
    const pid = await spawn({ cmd: ['sh', '-c', 'for i in 1 2 3 4 5 6; do echo line$i; sleep 0.2; done'] });
    const abort = new AbortController();
    const first: SseMessage[] = [];
    const stream = await open(pid, '', {}, abort.signal);
    for await (const m of stream) {
      first.push(m);
      if (first.length === 2) break;
    }
    abort.abort();
    const lastId = first.at(-1)!.id!;
    const rest = await collect(await open(pid, '', { 'last-event-id': String(lastId) }));
    const all = [...first, ...rest];
    expect(text(all)).toBe('line1\nline2\nline3\nline4\nline5\nline6\n');
    expect(all.map((e) => e.id)).toEqual(all.map((_, i) => i + 1));
    // The query form resumes too, for clients that cannot set headers.
    const tail = await collect(await open(pid, `?last_event_id=${all.length - 1}`));
    expect(tail.map((e) => e.event)).toEqual(['exit']);
  });

  it('writes stdin (utf8 and base64) and closes it with eof', async () => {
    const pid = await spawn({ cmd: ['cat'] });
    expect((await api('POST', `/processes/${pid}/stdin`, { data: 'hello ' })).json).toEqual({ bytes_accepted: 6 });
    expect((await api('POST', `/processes/${pid}/stdin`, { data: Buffer.from('world\n').toString('base64'), encoding: 'base64', eof: true })).status).toBe(200);
    const events = await collect(await open(pid, '?encoding=base64'));
    expect(Buffer.concat(events.filter((e) => e.event === 'stdout').map((e) => Buffer.from(JSON.parse(e.data).data, 'base64'))).toString()).toBe(
      'hello world\n',
    );
    expect(JSON.parse(events.at(-1)!.data)).toMatchObject({ exit_code: 0 });
    const late = await api('POST', `/processes/${pid}/stdin`, { data: 'x' });
    expect(late.status).toBe(409);
    expect(late.json.error.code).toBe('INVALID_STATE');
  });

  it('signals a process', async () => {
    const pid = await spawn({ cmd: ['sleep', '30'] });
    expect((await api('POST', `/processes/${pid}/signal`, { signal: 'SIGTERM' })).status).toBe(204);
    const events = await collect(await open(pid));
    expect(JSON.parse(events.at(-1)!.data)).toMatchObject({ exit_code: null, signal: 'SIGTERM' });
    expect((await api('POST', `/processes/${pid}/signal`, { signal: 'SIGNOPE' })).status).toBe(400);
  });

  it('runs a pty whose size follows resize', async () => {
    const pid = await spawn({ cmd: ['sh', '-c', 'stty size; read x; stty size'], pty: { cols: 100, rows: 30 } });
    const stream = await open(pid);
    const seen: SseMessage[] = [];
    const reader = (async () => {
      for await (const m of stream) seen.push(m);
    })();
    const until = async (cond: () => boolean) => {
      for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
    };
    await until(() => text(seen).includes('30 100'));
    expect((await api('POST', `/processes/${pid}/resize`, { cols: 132, rows: 43 })).status).toBe(204);
    await api('POST', `/processes/${pid}/stdin`, { data: '\n' });
    await reader;
    expect(text(seen)).toMatch(/30 100[\s\S]*43 132/);
    const notPty = await spawn({ cmd: ['sleep', '5'] });
    const refused = await api('POST', `/processes/${notPty}/resize`, { cols: 80, rows: 24 });
    expect(refused.status).toBe(409);
    await api('POST', `/processes/${notPty}/signal`, { signal: 'SIGKILL' });
  });

  it('answers unknown pids and bad requests with registered codes, before anything reaches the guest', async () => {
    for (const [path, method, body, status, code] of [
      ['/processes/424242/output', 'GET', undefined, 404, 'PROCESS_NOT_FOUND'],
      ['/processes/424242/stdin', 'POST', { data: 'x' }, 404, 'PROCESS_NOT_FOUND'],
      ['/processes/424242/signal', 'POST', { signal: 'SIGINT' }, 404, 'PROCESS_NOT_FOUND'],
      ['/processes', 'POST', { cmd: ['a\u0000b'] }, 400, 'INVALID_ARGUMENT'],
      ['/processes', 'POST', { cmd: [] }, 400, 'INVALID_ARGUMENT'],
      ['/processes', 'POST', { cmd: ['true'], pty: { cols: 0, rows: 5 } }, 400, 'INVALID_ARGUMENT'],
      ['/processes/1/stdin', 'POST', { data: '%%%', encoding: 'base64' }, 400, 'INVALID_ARGUMENT'],
      ['/processes', 'POST', { cmd: ['no-such-program-here'] }, 422, 'GUEST_COMMAND_NOT_FOUND'],
    ] as const) {
      const r = await api(method, path, body);
      expect([r.status, r.json.error.code], `${method} ${path}`).toEqual([status, code]);
      expect(isErrorCode(r.json.error.code)).toBe(true);
    }
    const badResume = await fetch(`${base}/v1/vms/${vm.id}/processes/1/output`, { headers: { ...auth, 'last-event-id': 'abc' } });
    expect(badResume.status).toBe(400);
    const noAuth = await fetch(`${base}/v1/vms/${vm.id}/processes`);
    expect(noAuth.status).toBe(401);
  });

  it('ends open streams when the VM goes away', async () => {
    const other = await rt.service.create({ profile: rt.profile });
    const r = await fetch(`${base}/v1/vms/${other.id}/processes`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ cmd: ['sleep', '30'] }),
    });
    const { pid } = (await r.json()) as { pid: number };
    const res = await fetch(`${base}/v1/vms/${other.id}/processes/${pid}/output`, { headers: auth });
    const events = collect(readSse(res.body!));
    await rt.service.destroy(other, 'test');
    const got = await events;
    expect(got.at(-1)).toMatchObject({ event: 'error' });
    expect(JSON.parse(got.at(-1)!.data).code).toBe('PROCESS_NOT_FOUND');
  });
});
