/**
 * Membership and publishing against a real three-member etcd cluster
 * (Debian's etcd-server on loopback ports). Each test uses its own key
 * prefix, so they do not see each other's nodes. Skips, saying why, when
 * /usr/bin/etcd is missing.
 */
import type { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TfcError } from '../errors/index.js';
import { createEtcdClient } from './etcd-client.js';
import { Membership } from './membership.js';
import { PoolPublisher } from './publisher.js';
import { EtcdTestCluster, etcdSkipReason } from './testing/etcd-cluster.js';
import type { NodeInfo } from './view.js';

const skip = etcdSkipReason();
if (skip) console.warn(`skipping cluster etcd tests: ${skip}`);

const TTL_S = 2;
const CALL_TIMEOUT_MS = 1500;
/** etcd's leader checks expiry every 500 ms and the watch adds a little: allowed on top of the TTL. */
const EXPIRY_SLACK_MS = 2500;

let etcd: EtcdTestCluster;
const clients: Etcd3[] = [];
const members: Membership[] = [];
let prefixN = 0;

function node(name: string, prefix: string, ttlS = TTL_S) {
  const config = {
    nodeName: name,
    advertiseUrl: `http://127.0.0.1:${8080 + clients.length}`,
    leaseTtlS: ttlS,
    keyPrefix: prefix,
    callTimeoutMs: CALL_TIMEOUT_MS,
    endpoints: etcd.endpoints,
  };
  const client = createEtcdClient(config);
  clients.push(client);
  const m = new Membership(
    client,
    config,
    { version: 'test', capacity: { vcpus: 2, memory_mib: 4096, max_vms: 8 } },
    { log: process.env.TFC_CLUSTER_TEST_LOG ? (l, msg, d) => console.log(Date.now() % 100000, name, l, msg, JSON.stringify(d)) : undefined },
  );
  members.push(m);
  return { client, m, config };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

const names = (m: Membership) =>
  m
    .nodes()
    .map((n) => n.name)
    .join(',');
const freshPrefix = () => `/tfc-test-${process.pid}-${++prefixN}/`;

describe.skipIf(skip !== null)('cluster membership and publishing (real etcd, 3 members)', () => {
  beforeAll(async () => {
    etcd = await EtcdTestCluster.start();
  }, 120_000);

  // Every node a test made leaves and every client closes, even when the test failed.
  afterEach(async () => {
    await Promise.all(members.splice(0).map((m) => m.stop()));
    for (const c of clients.splice(0)) c.close();
  }, 30_000);

  afterAll(async () => {
    await etcd?.destroy();
  }, 60_000);

  it('three nodes register and see each other; a node whose keepalive stops leaves within the TTL; a stopped node leaves at once', async () => {
    const prefix = freshPrefix();
    const [a, b, c] = ['a', 'b', 'c'].map((n) => node(n, prefix));
    const leftSeenByA: string[] = [];
    a.m.on('left', (n: NodeInfo) => leftSeenByA.push(n.name));
    await Promise.all([a.m.start(), b.m.start(), c.m.start()]);
    for (const x of [a, b, c]) await until(`${x.config.nodeName} sees a,b,c`, () => names(x.m) === 'a,b,c', 10_000);

    // c "dies": no more keepalives, no revoke. etcd drops its key when the lease expires.
    const died = Date.now();
    await c.m.abandon();
    await until('a and b see c leave', () => names(a.m) === 'a,b' && names(b.m) === 'a,b', TTL_S * 1000 + EXPIRY_SLACK_MS + 2000);
    expect(Date.now() - died).toBeLessThanOrEqual(TTL_S * 1000 + EXPIRY_SLACK_MS);
    expect(leftSeenByA).toEqual(['c']);
    expect(() => a.m.resolve('c')).toThrow(expect.objectContaining({ code: 'NODE_LOST' }));
    expect(() => a.m.resolve('zz')).toThrow(expect.objectContaining({ code: 'NODE_UNKNOWN' }));
    expect(a.m.resolve('b').url).toBe(b.config.advertiseUrl);

    // A clean stop revokes the lease: gone well before the TTL.
    const stopped = Date.now();
    await b.m.stop();
    await until('a sees b leave', () => names(a.m) === 'a', TTL_S * 1000);
    expect(Date.now() - stopped).toBeLessThan(TTL_S * 1000);
  }, 60_000);

  it('a node whose lease is lost registers again (rejoins), and a restarted node rejoins with a new start time', async () => {
    const prefix = freshPrefix();
    const a = node('a', prefix);
    const b = node('b', prefix);
    const joined: string[] = [];
    const left: string[] = [];
    a.m.on('joined', (n: NodeInfo) => joined.push(n.name));
    a.m.on('left', (n: NodeInfo) => left.push(n.name));
    await Promise.all([a.m.start(), b.m.start()]);
    await until('a sees b', () => names(a.m) === 'a,b', 10_000);
    const firstLease = b.m.lease!;

    // The lease goes away behind b's back (as after etcd was unreachable for longer than the TTL).
    await a.client.leaseClient.leaseRevoke({ ID: firstLease });
    await until('b registered again under a new lease', () => b.m.registrations === 2 && b.m.lease !== null && b.m.lease !== firstLease, 10_000);
    await until('a sees b back', () => names(a.m) === 'a,b', 10_000);
    expect(left).toEqual(['b']);
    expect(joined).toEqual(['b', 'b']);

    // b restarts (a new process): same name, new start time.
    const before = a.m.resolve('b').started_at;
    await b.m.abandon();
    await until('a sees b leave', () => names(a.m) === 'a', TTL_S * 1000 + EXPIRY_SLACK_MS + 2000);
    await new Promise((r) => setTimeout(r, 5));
    const b2 = node('b', prefix);
    await b2.m.start();
    await until('a sees b rejoin', () => names(a.m) === 'a,b', 10_000);
    expect(a.m.resolve('b').started_at > before).toBe(true);
  }, 60_000);

  it('with one etcd member of three stopped, registration, publishing and the watch still work', async () => {
    const prefix = freshPrefix();
    const a = node('a', prefix);
    await a.m.start();
    await etcd.stopMember(0);
    try {
      const b = node('b', prefix);
      await b.m.start();
      await until('a sees b (watch works)', () => names(a.m) === 'a,b', 15_000);
      const pub = new PoolPublisher(b.client, b.m, { ...b.config, publishIntervalMs: 200 });
      pub.update('default', { ready: 3, allocated: 1, target: 4 });
      pub.setVms(4);
      await until('a sees b’s pool counts', () => a.m.view.node('b')?.pools.default?.ready === 3 && a.m.view.node('b')?.vms === 4, 15_000);
      await pub.stop();
      // Keepalives keep flowing for longer than a TTL: still registered, still healthy.
      await new Promise((r) => setTimeout(r, TTL_S * 1000 + 500));
      expect(b.m.healthy()).toBe(true);
      expect(b.m.registrations).toBe(1);
      expect(names(a.m)).toBe('a,b');
    } finally {
      await etcd.startMember(0);
    }
  }, 90_000);

  it('without quorum, cluster calls fail with CLUSTER_UNAVAILABLE within the call timeout, publishing does not throw, and the node rejoins after', async () => {
    const prefix = freshPrefix();
    const a = node('a', prefix);
    const b = node('b', prefix);
    await Promise.all([a.m.start(), b.m.start()]);
    await until('a sees b', () => names(a.m) === 'a,b', 10_000);
    const pub = new PoolPublisher(a.client, a.m, { ...a.config, publishIntervalMs: 200 });
    await Promise.all([etcd.stopMember(1), etcd.stopMember(2)]);
    try {
      const started = Date.now();
      const err = await a.m.liveNodes().then(
        () => null,
        (e: unknown) => e,
      );
      const took = Date.now() - started;
      expect(err).toBeInstanceOf(TfcError);
      expect((err as TfcError).code).toBe('CLUSTER_UNAVAILABLE');
      expect((err as TfcError).status).toBe(503);
      expect(took).toBeLessThan(CALL_TIMEOUT_MS + 1000);

      // The local publisher keeps accepting updates; its writes fail and are counted.
      expect(() => pub.update('default', { ready: 1, allocated: 0, target: 2 })).not.toThrow();
      await until('a failed publish', () => pub.stats.failures > 0, 10_000);
      // Health goes within a keepalive interval plus the call timeout; then placement refuses.
      await until('a unhealthy', () => !a.m.healthy(), a.m.keepaliveIntervalMs + CALL_TIMEOUT_MS + 3000);
      expect(() => a.m.requireHealthy('place a VM')).toThrow(expect.objectContaining({ code: 'CLUSTER_UNAVAILABLE' }));
      // The local view still routes calls to nodes it knew (they keep serving their VMs).
      expect(a.m.resolve('b').name).toBe('b');
      // Stay cut off for longer than the TTL.
      await new Promise((r) => setTimeout(r, TTL_S * 1000 + 500));
    } finally {
      await Promise.all([etcd.startMember(1), etcd.startMember(2)]);
    }
    await until('a healthy again', () => a.m.healthy(), 20_000);
    await until('a’s counts published after quorum came back', async () => pub.settled, 20_000);
    const live = await a.m.liveNodes();
    expect(live.map((n) => n.name).sort()).toEqual(['a', 'b']);
    const res = await a.client.get(`${prefix}pools/a/default`).string();
    expect(JSON.parse(res!)).toEqual({ ready: 1, allocated: 0, target: 2 });
    await pub.stop();
  }, 120_000);

  it('the publisher writes at most once per interval, only what changed, and the last value wins', async () => {
    const prefix = freshPrefix();
    const a = node('a', prefix);
    await a.m.start();
    const intervalMs = 300;
    const pub = new PoolPublisher(a.client, a.m, { ...a.config, publishIntervalMs: intervalMs });
    const started = Date.now();
    let last = { ready: 0, allocated: 0, target: 8 };
    for (let i = 0; i < 150; i++) {
      last = { ready: i % 7, allocated: (i * 3) % 5, target: 8 };
      pub.update('default', last);
      pub.update('python', { ready: 1, allocated: 0, target: 1 });
      await new Promise((r) => setTimeout(r, 10));
    }
    await until('settled', () => pub.settled, 10_000);
    const elapsed = Date.now() - started;
    expect(pub.stats.changes).toBeGreaterThan(100);
    // One write right away, then at most one per interval.
    expect(pub.stats.writes).toBeLessThanOrEqual(Math.ceil(elapsed / intervalMs) + 1);
    expect(pub.stats.writes).toBeGreaterThanOrEqual(2);
    expect(JSON.parse((await a.client.get(`${prefix}pools/a/default`).string())!)).toEqual(last);
    expect(JSON.parse((await a.client.get(`${prefix}pools/a/python`).string())!)).toEqual({ ready: 1, allocated: 0, target: 1 });

    // Unchanged values cost nothing.
    const writes = pub.stats.writes;
    for (let i = 0; i < 20; i++) pub.update('default', last);
    await new Promise((r) => setTimeout(r, intervalMs * 2));
    expect(pub.stats.writes).toBe(writes);

    // The keys share the node's lease: they go when it leaves.
    await pub.stop();
    await a.m.stop();
    expect(await a.client.getAll().prefix(`${prefix}pools/`).keys()).toEqual([]);
  }, 60_000);
});
