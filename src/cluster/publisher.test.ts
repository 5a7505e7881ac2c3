/**
 * The publisher's rules without etcd: a fake transaction endpoint records
 * what would be written. (cluster.etcd.test.ts runs it against real etcd.)
 */
import { EventEmitter } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import type { MembershipEvents } from './membership.js';
import { PoolPublisher } from './publisher.js';

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
        { key: '/tfc/pools/n1/_node', value: '{"vms":1}', lease: '42' },
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
});
