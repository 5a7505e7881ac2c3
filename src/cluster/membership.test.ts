/**
 * Membership when etcd cannot be reached at all (nothing listens on the
 * endpoint): starting must not block the daemon, and every call that needs
 * etcd fails with CLUSTER_UNAVAILABLE within the call timeout.
 * (cluster.etcd.test.ts covers a real cluster.)
 */
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TfcError } from '../errors/index.js';
import { createEtcdClient } from './etcd-client.js';
import { Membership } from './membership.js';

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe('Membership without etcd', () => {
  it('starts within the call timeout, reports itself unhealthy, and fails cluster calls with CLUSTER_UNAVAILABLE', async () => {
    const callTimeoutMs = 500;
    const config = {
      nodeName: 'lonely',
      advertiseUrl: 'http://127.0.0.1:1',
      leaseTtlS: 2,
      keyPrefix: '/tfc/',
      callTimeoutMs,
      endpoints: [`http://127.0.0.1:${await closedPort()}`],
    };
    const client = createEtcdClient(config);
    cleanup.push(() => client.close());
    const m = new Membership(client, config, { version: 'test', capacity: { vcpus: 1, memory_mib: 1024, max_vms: 1 } });
    cleanup.push(() => m.stop());

    let started = Date.now();
    await m.start();
    // Registration and the first read of the view each wait at most two calls (grant + put, get + watch).
    expect(Date.now() - started).toBeLessThan(2 * callTimeoutMs + 1500);
    expect(m.healthy()).toBe(false);
    expect(m.lease).toBeNull();
    expect(() => m.requireHealthy('place a VM')).toThrow(expect.objectContaining({ code: 'CLUSTER_UNAVAILABLE', status: 503 }));

    started = Date.now();
    const err = await m.liveNodes().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TfcError);
    expect((err as TfcError).code).toBe('CLUSTER_UNAVAILABLE');
    expect((err as TfcError).message).toMatch(/list cluster nodes/);
    expect(Date.now() - started).toBeLessThan(callTimeoutMs + 1500);

    expect(() => m.resolve('other')).toThrow(expect.objectContaining({ code: 'NODE_UNKNOWN' }));
    started = Date.now();
    await m.stop();
    expect(Date.now() - started).toBeLessThan(callTimeoutMs + 1500);
  });
});
