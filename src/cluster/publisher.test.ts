/**
 * The publisher's rules without etcd: a fake transaction endpoint records
 * what would be written. (cluster.etcd.test.ts runs it against real etcd.)
 */
import { EventEmitter } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import type { MembershipEvents } from './membership.js';
import { PoolPublisher } from './publisher.js';
import { MAX_PUBLISHED_VMS, parseLoad, type PublishedVm } from './view.js';

interface Op {
  request_put?: { key: Buffer; value: Buffer; lease: string };
  request_delete_range?: { key: Buffer };
}

class FakeMembership extends EventEmitter<MembershipEvents> {
  lease: string | null = null;
}

function fakeEtcd(fail: () => boolean = () => false) {
  const txns: Array<Array<{ key: string; value: string | null; lease?: string }>> = [];
  const client = {
    kv: {
      txn: async (req: { success: Op[] }) => {
        if (fail()) throw new Error('etcd is away');
        txns.push(
          req.success.map((op) =>
            op.request_put
              ? { key: op.request_put.key.toString(), value: op.request_put.value.toString(), lease: op.request_put.lease }
              : { key: op.request_delete_range!.key.toString(), value: null },
          ),
        );
        return {};
      },
    },
  };
  return { client: client as unknown as Etcd3, txns };
}

const config = { nodeName: 'n1', keyPrefix: '/tfc/', publishIntervalMs: 100, callTimeoutMs: 1000, endpoints: ['http://127.0.0.1:1'] };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const publishers: PoolPublisher[] = [];

afterEach(async () => {
  await Promise.all(publishers.splice(0).map((p) => p.stop()));
});

describe('PoolPublisher', () => {
  it('writes nothing without a lease, then everything once the node registers', async () => {
    const m = new FakeMembership();
    const { client, txns } = fakeEtcd();
    const pub = new PoolPublisher(client, m, config);
    publishers.push(pub);
    pub.update('default', { ready: 1, allocated: 0, target: 2 });
    pub.setVms(1);
    await sleep(300);
    expect(txns).toEqual([]);
    m.lease = '42';
    m.emit('registered', '42');
    await sleep(50);
    expect(txns).toEqual([
      [
        { key: '/tfc/pools/n1/default', value: '{"ready":1,"allocated":0,"target":2}', lease: '42' },
        // A count alone: published as an incomplete (truncated) empty list.
        { key: '/tfc/pools/n1/_node', value: '{"vms":1,"list":[],"truncated":true}', lease: '42' },
      ],
    ]);
    // A new lease (after a rejoin): the same keys again, under it.
    m.lease = '43';
    m.emit('registered', '43');
    await sleep(150);
    expect(txns).toHaveLength(2);
    expect(txns[1].map((op) => op.lease)).toEqual(['43', '43']);
  });

  it('retries a failed write at the next interval, never throws into the caller, and deletes removed pools', async () => {
    const m = new FakeMembership();
    m.lease = '7';
    let failing = true;
    const errors: string[] = [];
    const { client, txns } = fakeEtcd(() => failing);
    const pub = new PoolPublisher(client, m, config, {
      onError: (e) => {
        errors.push(e.message);
        throw new Error('a broken hook');
      },
    });
    publishers.push(pub);
    expect(() => pub.update('default', { ready: 1, allocated: 0, target: 2 })).not.toThrow();
    await sleep(250);
    expect(pub.stats.failures).toBeGreaterThanOrEqual(2);
    expect(pub.stats.failures).toBeLessThanOrEqual(4);
    expect(errors[0]).toMatch(/CLUSTER|etcd/);
    failing = false;
    await sleep(150);
    expect(txns).toHaveLength(1);
    pub.removePool('default');
    await sleep(150);
    expect(txns[1]).toEqual([{ key: '/tfc/pools/n1/default', value: null }]);
    expect(pub.settled).toBe(true);
  });

  it('publishes the VM list in the same transaction as the pool counts, only when it changed, sorted', async () => {
    const m = new FakeMembership();
    m.lease = '9';
    const { client, txns } = fakeEtcd();
    const pub = new PoolPublisher(client, m, config);
    publishers.push(pub);
    const a: PublishedVm = { id: 'vm-00000000000a', pool: 'default', state: 'allocated' };
    const b: PublishedVm = { id: 'vm-00000000000b', pool: null, state: 'allocated' };
    const c: PublishedVm = { id: 'vm-00000000000c', pool: 'default', state: 'ready' };
    // Many changes within one interval: one transaction with both keys, the last state of each.
    pub.update('default', { ready: 1, allocated: 0, target: 2 });
    pub.setVms([c]);
    pub.setVms([c, b]);
    pub.update('default', { ready: 1, allocated: 1, target: 2 });
    pub.setVms([c, b, a]);
    await sleep(60);
    expect(txns).toHaveLength(1);
    expect(txns[0].map((op) => op.key)).toEqual(['/tfc/pools/n1/default', '/tfc/pools/n1/_node']);
    const load = JSON.parse(txns[0][1].value!) as unknown;
    expect(load).toEqual({ vms: 3, list: [a, b, c], truncated: false });
    expect(parseLoad(txns[0][1].value!)).toEqual(load);
    // The same VMs in another order: nothing to write.
    pub.setVms([a, c, b]);
    pub.update('default', { ready: 1, allocated: 1, target: 2 });
    await sleep(250);
    expect(txns).toHaveLength(1);
    // A state change: the list alone.
    pub.setVms([a, b, { ...c, state: 'allocated' }]);
    await sleep(250);
    expect(txns).toHaveLength(2);
    expect(txns[1].map((op) => op.key)).toEqual(['/tfc/pools/n1/_node']);
    expect((JSON.parse(txns[1][0].value!) as { list: PublishedVm[] }).list[2].state).toBe('allocated');
    expect(pub.stats.writes).toBe(2);
  });

  it('bounds the published list: the first MAX_PUBLISHED_VMS ids by order, the count, and truncated', async () => {
    const m = new FakeMembership();
    m.lease = '9';
    const { client, txns } = fakeEtcd();
    const pub = new PoolPublisher(client, m, config);
    publishers.push(pub);
    const vms: PublishedVm[] = Array.from({ length: MAX_PUBLISHED_VMS + 5 }, (_, i) => ({
      id: `vm-${(MAX_PUBLISHED_VMS + 4 - i).toString(16).padStart(12, '0')}`,
      pool: 'default',
      state: 'ready',
    }));
    pub.setVms(vms);
    await sleep(60);
    expect(txns).toHaveLength(1);
    const value = txns[0][0].value!;
    const load = JSON.parse(value) as { vms: number; list: PublishedVm[]; truncated: boolean };
    expect(load.vms).toBe(MAX_PUBLISHED_VMS + 5);
    expect(load.truncated).toBe(true);
    expect(load.list).toHaveLength(MAX_PUBLISHED_VMS);
    expect(load.list[0].id).toBe('vm-000000000000');
    expect(load.list.at(-1)!.id).toBe(`vm-${(MAX_PUBLISHED_VMS - 1).toString(16).padStart(12, '0')}`);
    // One etcd value stays well under etcd's request limit (1.5 MiB by default).
    expect(value.length).toBeLessThan(100 * 1024);
    expect(parseLoad(value)).toMatchObject({ vms: MAX_PUBLISHED_VMS + 5, truncated: true });
    // Exactly at the bound: complete.
    pub.setVms(vms.slice(0, MAX_PUBLISHED_VMS));
    await sleep(250);
    expect(JSON.parse(txns[1][0].value!)).toMatchObject({ vms: MAX_PUBLISHED_VMS, truncated: false });
  });
});
