import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon/index.js';
import { readSse, type SseMessage } from '../src/cli/sse-client.js';
import { assertNothingLeft, jsonApi, scratchDir, startOneVmDaemon, testDataDir, until } from './helpers.js';

// Streaming processes end to end: REST -> daemon -> agent in a real VM (a
// clone from the pool): output arrives as Server-Sent Events while the
// process runs, a client that reconnects with Last-Event-ID gets the rest
// exactly once, stdin, signals, and a pty that sees its resize.
describe('processes API on a real VM', () => {
  const dir = scratchDir();
  const auth = { authorization: 'Bearer test-token-0123456789' };
  let daemon: Daemon | undefined;
  let vmId = '';
  const api = jsonApi(() => daemon!.url, auth);

  beforeAll(async () => {
    ({ daemon, vmId } = await startOneVmDaemon(dir.path, 'test-token-0123456789'));
  });

  afterAll(async () => {
    await daemon?.close();
    dir.remove();
    await assertNothingLeft(testDataDir());
  });

  const spawn = async (body: unknown): Promise<number> => {
    const r = await api('POST', `/v1/vms/${vmId}/processes`, body);
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    return r.json.pid;
  };
  const open = async (pid: number, headers: Record<string, string> = {}, signal?: AbortSignal) => {
    const res = await fetch(`${daemon!.url}/v1/vms/${vmId}/processes/${pid}/output`, { headers: { ...auth, ...headers }, ...(signal ? { signal } : {}) });
    expect(res.status).toBe(200);
    return readSse(res.body!);
  };
  const stdoutOf = (events: SseMessage[]) =>
    events
      .filter((e) => e.event === 'stdout')
      .map((e) => JSON.parse(e.data).data)
      .join('');

  it('streams output in order before the process exits', async () => {
    const pid = await spawn({ cmd: ['sh', '-c', 'echo first; sleep 2; echo second >&2; sleep 2; echo third; exit 7'] });
    const events: Array<SseMessage & { at: number }> = [];
    for await (const m of await open(pid)) events.push({ ...m, at: Date.now() });
    expect(events.map((e) => e.event)).toEqual(['stdout', 'stderr', 'stdout', 'exit']);
    expect(events.map((e) => e.id)).toEqual([1, 2, 3, 4]);
    expect(stdoutOf(events)).toBe('first\nthird\n');
    expect(JSON.parse(events[3].data)).toMatchObject({ exit_code: 7, signal: null });
    // "first" arrived while the process still had 4 s of sleeping to do.
    expect(events[3].at - events[0].at).toBeGreaterThan(3000);
  });

  it('a client that disconnects and reconnects with Last-Event-ID gets the rest exactly once', async () => {
    const pid = await spawn({ cmd: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do echo n$i; sleep 0.3; done'] });
    const abort = new AbortController();
    const first: SseMessage[] = [];
    for await (const m of await open(pid, {}, abort.signal)) {
      first.push(m);
      if (first.length === 3) break;
    }
    abort.abort();
    const rest: SseMessage[] = [];
    for await (const m of await open(pid, { 'last-event-id': String(first.at(-1)!.id) })) rest.push(m);
    const all = [...first, ...rest];
    expect(stdoutOf(all)).toBe('n1\nn2\nn3\nn4\nn5\nn6\nn7\nn8\n');
    expect(all.map((e) => e.id)).toEqual(all.map((_, i) => i + 1));
    expect(all.at(-1)!.event).toBe('exit');
  });

  it('forwards stdin and signals', async () => {
    const cat = await spawn({ cmd: ['cat'] });
    await api('POST', `/v1/vms/${vmId}/processes/${cat}/stdin`, { data: 'from the host\n', eof: true });
    const catEvents: SseMessage[] = [];
    for await (const m of await open(cat)) catEvents.push(m);
    expect(stdoutOf(catEvents)).toBe('from the host\n');
    expect(JSON.parse(catEvents.at(-1)!.data)).toMatchObject({ exit_code: 0 });

    const sleeper = await spawn({ cmd: ['sleep', '60'] });
    expect((await api('POST', `/v1/vms/${vmId}/processes/${sleeper}/signal`, { signal: 'SIGINT' })).status).toBe(204);
    const sleepEvents: SseMessage[] = [];
    for await (const m of await open(sleeper)) sleepEvents.push(m);
    expect(JSON.parse(sleepEvents.at(-1)!.data)).toMatchObject({ exit_code: null, signal: 'SIGINT' });
    const list = await api('GET', `/v1/vms/${vmId}/processes`);
    expect(list.json.processes.map((p: { pid: number }) => p.pid)).toEqual(expect.arrayContaining([cat, sleeper]));
  });

  it('a pty process sees its size, and its resize', async () => {
    const pid = await spawn({ cmd: ['sh', '-c', 'stty size; read line; stty size'], pty: { cols: 90, rows: 20 } });
    const seen: SseMessage[] = [];
    const reading = (async () => {
      for await (const m of await open(pid)) seen.push(m);
    })();
    await until('first stty size', async () => stdoutOf(seen).includes('20 90'), 30_000);
    expect((await api('POST', `/v1/vms/${vmId}/processes/${pid}/resize`, { cols: 120, rows: 40 })).status).toBe(204);
    await api('POST', `/v1/vms/${vmId}/processes/${pid}/stdin`, { data: '\n' });
    await reading;
    expect(stdoutOf(seen)).toMatch(/20 90[\s\S]*40 120/);
    expect(JSON.parse(seen.at(-1)!.data)).toMatchObject({ exit_code: 0 });
  });
});
