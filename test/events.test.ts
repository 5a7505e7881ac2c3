import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse, type SseMessage } from '../src/client/sse.js';
import { loadConfig } from '../src/config/index.js';
import { startDaemon, type Daemon } from '../src/daemon/index.js';
import { assertNothingLeft, jsonApi, scratchDir, testDataDir, until, writeConfig } from './helpers.js';

// GET /v1/events of a daemon on real VMs: a pool VM's whole life arrives in
// order, and a client that was away resumes with exactly what it missed.
describe('tfc serve: the event stream over a warm pool of real VMs', () => {
  const dir = scratchDir();
  const token = 'events-test-token-0123456789';
  const auth = { authorization: `Bearer ${token}` };
  let daemon: Daemon;
  /** Subscribers of the bus that are not event streams (the alert monitor): they stay. */
  let otherListeners = 0;
  const api = jsonApi(() => daemon.url, auth);
  const aborts: AbortController[] = [];

  /** Opens the stream; `take` reads messages until `stop` says so (or `max` arrived). */
  const open = async (headers: Record<string, string> = {}, query = '') => {
    const abort = new AbortController();
    aborts.push(abort);
    const res = await fetch(`${daemon.url}/v1/events${query}`, { headers: { ...auth, ...headers }, signal: abort.signal });
    expect(res.status).toBe(200);
    const messages = readSse(res.body!);
    const seen: SseMessage[] = [];
    return {
      seen,
      async until(stop: (m: SseMessage) => boolean, max = 10_000): Promise<SseMessage[]> {
        for (;;) {
          const r = await messages.next();
          if (r.done) throw new Error(`the stream ended after ${seen.length} messages`);
          seen.push(r.value);
          if (stop(r.value) || seen.length >= max) return seen;
        }
      },
      close: () => abort.abort(),
    };
  };
  const data = (m: SseMessage) => (JSON.parse(m.data) as { data: Record<string, unknown> }).data;

  beforeAll(async () => {
    const config = writeConfig(dir.path, '[pools.default]\nmin = 1\nmax = 2\ntarget = 1\nhealth_interval_ms = 500\nallocate_timeout_ms = 60000\n');
    const loaded = loadConfig({ configPath: config, env: { TFC_DATA_DIR: testDataDir() } });
    daemon = await startDaemon(loaded.config, { listen: '127.0.0.1:0', env: { TFC_TOKEN: token }, logger: pino({ level: 'silent' }) });
    otherListeners = daemon.events.listenerCount;
    await until('the pool is ready', async () => (await api('GET', '/v1/pools/default')).json.ready >= 1);
  });

  afterAll(async () => {
    for (const a of aborts) a.abort();
    await daemon?.close();
    dir.remove();
    await assertNothingLeft(testDataDir());
  });

  it("delivers a pool VM's transitions in order, from its restore to its stop, with its allocation and release", async () => {
    // From id 0: the ring still holds the VM's restore, which happened before this test.
    const stream = await open({ 'last-event-id': '0' }, '?types=vm.state,vm.ready,allocation,release');
    const alloc = await api('POST', '/v1/pools/default/allocate', {});
    expect(alloc.status).toBe(201);
    const vmId: string = alloc.json.vm.id;
    expect((await api('DELETE', `/v1/vms/${vmId}`)).status).toBe(204);
    const isStopped = (m: SseMessage) => m.event === 'vm.state' && data(m).vm_id === vmId && data(m).to === 'stopped';
    const seen = await stream.until(isStopped);
    stream.close();

    const ids = seen.map((m) => m.id!);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(seen.map((m) => m.event))).toEqual(new Set(['vm.state', 'vm.ready', 'allocation', 'release']));
    const mine = seen.filter((m) => data(m).vm_id === vmId);
    const transitions = mine.filter((m) => m.event === 'vm.state').map((m) => `${data(m).from}->${data(m).to}`);
    // One chain: each transition starts where the one before ended.
    expect(transitions[0]).toBe('creating->booting');
    for (let i = 1; i < transitions.length; i++) expect(transitions[i].split('->')[0]).toBe(transitions[i - 1].split('->')[1]);
    expect(transitions).toContain('booting->running');
    expect(transitions.slice(-2)).toEqual(['running->stopping', 'stopping->stopped']);
    // The VM's life in the stream: restored, ready, allocated, released, stopped.
    const order = mine.map((m) => (m.event === 'vm.state' ? `${data(m).to}` : m.event));
    const at = (what: string) => order.indexOf(what);
    expect(at('running')).toBeLessThan(at('vm.ready'));
    expect(at('vm.ready')).toBeLessThan(at('allocation'));
    expect(at('allocation')).toBeLessThan(at('release'));
    expect(at('release')).toBeLessThan(at('stopping'));
    expect(data(mine[at('vm.ready')])).toMatchObject({ kind: 'restore', profile: 'minimal', driver: 'qemu' });
    expect(data(mine[at('allocation')])).toMatchObject({ pool: 'default', ms: alloc.json.allocation_ms });
    expect(data(mine[at('release')])).toMatchObject({ pool: 'default', reason: 'released (fresh pool)' });
  });

  it('resumes after a disconnect with exactly the events published meanwhile, none twice', async () => {
    await until('the pool is ready', async () => (await api('GET', '/v1/pools/default')).json.ready >= 1);
    const first = await open();
    const [hello] = await first.until(() => true);
    expect(hello.event).toBe('hello');
    const lastSeen = hello.id!;
    first.close();
    await until('the stream is closed', async () => daemon.events.listenerCount === otherListeners, 10_000);

    // Away: a VM is allocated and released, the pool refills.
    const alloc = await api('POST', '/v1/pools/default/allocate', {});
    expect(alloc.status).toBe(201);
    const vmId: string = alloc.json.vm.id;
    expect((await api('DELETE', `/v1/vms/${vmId}`)).status).toBe(204);
    await until('the pool has refilled', async () => (await api('GET', '/v1/pools/default')).json.ready >= 1);
    const missed = daemon.events.since(lastSeen);
    expect(missed.missed).toBe(0);
    expect(missed.events.length).toBeGreaterThan(4);
    const lastMissed = missed.events.at(-1)!.id;

    const resumed = await open({ 'last-event-id': String(lastSeen) });
    const got = await resumed.until((m) => m.id === lastMissed);
    resumed.close();
    // Every event published while away, in order, each once; no hello, no gap.
    expect(got.map((m) => [m.id, m.event])).toEqual(missed.events.map((e) => [e.id, e.type]));
    expect(got.map((m) => JSON.parse(m.data))).toEqual(missed.events.map((e) => JSON.parse(JSON.stringify(e))));
    const mine = got.filter((m) => data(m).vm_id === vmId).map((m) => (m.event === 'vm.state' ? `${data(m).from}->${data(m).to}` : m.event));
    expect(mine).toEqual(['allocation', 'release', 'running->stopping', 'stopping->stopped']);
    // No `pool` event is required here: pool events are coalesced (at most one per 250 ms, with the
    // counts at send time), and a fast refill can bring the counts back to what was last published
    // before one is due (src/events/adapters.test.ts covers them).
  });
});
