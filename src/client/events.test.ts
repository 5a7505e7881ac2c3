import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { buildApp } from '../api/app.js';
import { EventBus, EVENT_TYPES, type BusEvent, type EventPayloads } from '../events/index.js';
import { FAKE_TOKEN, fakeDeps, fakeVm } from '../testing/fake-api-deps.js';
import { TfcClient } from './client.js';
import { DAEMON_EVENT_TYPES, type DaemonEvent, type DaemonEventPayloads, type EventStreamItem } from './events.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(5);
  }
};

describe('the client event types', () => {
  it('mirror the daemon bus exactly', () => {
    expect([...DAEMON_EVENT_TYPES]).toEqual([...EVENT_TYPES]);
    expectTypeOf<DaemonEventPayloads>().toEqualTypeOf<EventPayloads>();
    expectTypeOf<BusEvent<'allocation'>>().toMatchTypeOf<DaemonEvent>();
  });
});

describe('TfcClient.events', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  /** A client whose event-stream connections the test can cut (as a network failure would), without aborting the caller's signal. */
  const start = async (bus: EventBus) => {
    app = await buildApp({ ...fakeDeps(fakeVm()), events: bus });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const connections: AbortController[] = [];
    const sentIds: Array<string | null> = [];
    const client = new TfcClient({
      url,
      token: FAKE_TOKEN,
      fetch: (input, init) => {
        const cut = new AbortController();
        connections.push(cut);
        sentIds.push(new Headers(init?.headers).get('last-event-id'));
        return fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, cut.signal]) : cut.signal });
      },
    });
    return { client, cutAll: () => connections.forEach((c) => c.abort(new Error('connection reset'))), sentIds };
  };

  it('yields events as they are published and resumes after a dropped connection with exactly the missed ones', async () => {
    const bus = new EventBus();
    const { client, cutAll, sentIds } = await start(bus);
    const stop = new AbortController();
    const got: EventStreamItem[] = [];
    const following = (async () => {
      for await (const e of client.events({ types: ['allocation', 'release'], signal: stop.signal, reconnectDelayMs: 20 })) got.push(e);
    })().catch((err: unknown) => err);
    await until(() => bus.listenerCount === 1);
    bus.publish('allocation', { pool: 'p', vm_id: 'vm-1', ms: 2 });
    bus.publish('pool', { pool: 'p', ready: 0, booting: 1, allocated: 1, target: 1 });
    bus.publish('release', { pool: 'p', vm_id: 'vm-1', reason: 'released (fresh pool)' });
    await until(() => got.length === 2);
    cutAll();
    await until(() => bus.listenerCount === 0);
    // Published while nobody listens: the reconnect asks for what came after id 3.
    bus.publish('allocation', { pool: 'p', vm_id: 'vm-2', ms: 3 });
    bus.publish('allocation', { pool: 'p', vm_id: 'vm-3', ms: 4 });
    await until(() => got.length === 4);
    expect(got.map((e) => [e.id, e.type])).toEqual([
      [1, 'allocation'],
      [3, 'release'],
      [4, 'allocation'],
      [5, 'allocation'],
    ]);
    expect(got[3]).toMatchObject({ type: 'allocation', data: { pool: 'p', vm_id: 'vm-3', ms: 4 } });
    expect(sentIds).toEqual([null, '3']);
    stop.abort(new Error('done'));
    expect(await following).toMatchObject({ message: 'done' });
    await until(() => bus.listenerCount === 0);
  });

  it('a connection cut before any event still resumes exactly (hello carries the position)', async () => {
    const bus = new EventBus();
    bus.publish('vm.failed', { driver: 'qemu', code: 'VMM_EXITED' });
    const { client, cutAll, sentIds } = await start(bus);
    const it = client.events({ reconnectDelayMs: 20 });
    const first = it.next();
    await until(() => bus.listenerCount === 1);
    await sleep(20);
    cutAll();
    await until(() => bus.listenerCount === 0);
    bus.publish('vm.failed', { driver: 'qemu', code: 'AGENT_TIMEOUT' });
    expect((await first).value).toMatchObject({ id: 2, type: 'vm.failed', data: { code: 'AGENT_TIMEOUT' } });
    expect(sentIds).toEqual([null, '1']);
    await it.return(undefined);
    await until(() => bus.listenerCount === 0);
  });

  it('yields gap and reset, and throws the daemon’s typed errors', async () => {
    const bus = new EventBus(2);
    for (let i = 0; i < 5; i++) bus.publish('vm.failed', { driver: 'qemu', code: 'VMM_EXITED' });
    const { client } = await start(bus);
    const resumed = client.events({ lastEventId: 1 });
    expect((await resumed.next()).value).toEqual({ type: 'gap', id: 3, missed: 2 });
    expect((await resumed.next()).value).toMatchObject({ id: 4, type: 'vm.failed' });
    await resumed.return(undefined);
    const reset = client.events({ lastEventId: 99 });
    expect((await reset.next()).value).toEqual({ type: 'reset', id: 5, last_id: 5 });
    await reset.return(undefined);
    await expect(client.events({ types: ['nope' as never] }).next()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
