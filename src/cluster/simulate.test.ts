/**
 * The scaling simulation itself, small: a few nodes for a few seconds
 * against the real etcd test cluster. Checks that the measured load stays
 * within the model's bounds (the rate limit holds cluster-wide) and that
 * the figures it prints are consistent with each other.
 */
import { describe, expect, it } from 'vitest';
import { model, runSimulation } from './simulate.js';
import { etcdSkipReason } from './testing/etcd-cluster.js';

const skip = etcdSkipReason();
if (skip) console.warn(`skipping the cluster simulation test: ${skip}`);

describe.skipIf(skip !== null)('cluster scaling simulation (real etcd)', () => {
  it('keeps each node to one write per publish interval however fast its pools change', async () => {
    const options = { nodes: 5, routers: 2, seconds: 4, pools: 2, changeMs: 50, publishIntervalMs: 500, ttlS: 6, seed: 3 };
    const r = await runSimulation(options);
    // Pools change 40 times a second per node; the publisher sends at most 2 transactions a second per node.
    expect(r.changesPerSec).toBeGreaterThan(r.publishTxnPerSec * 5);
    expect(r.publishTxnPerSec).toBeLessThanOrEqual(options.nodes * (1000 / options.publishIntervalMs) * 1.15);
    expect(r.publishTxnPerSec).toBeGreaterThan(options.nodes * (1000 / options.publishIntervalMs) * 0.5);
    // Every transaction is one raft proposal (plus the odd registration).
    if (r.proposalsPerSec !== null) expect(r.proposalsPerSec).toBeGreaterThanOrEqual(r.publishTxnPerSec * 0.8);
    // Every node watches every write: each watcher receives about what all nodes write.
    expect(r.watchEventsPerRouterPerSec).toBeGreaterThan(r.keysPerSec * 0.7);
    expect(r.watchEventsPerRouterPerSec).toBeLessThan(r.keysPerSec * 1.3);
    // Only the 2 routers watch pool counts: the other 3 nodes receive (next to) nothing.
    expect(r.routers).toBe(2);
    expect(r.watchEventsPerWatcherPerSec * options.nodes).toBeLessThan(r.watchEventsPerRouterPerSec * options.routers * 1.1);
    expect(r.keepalivesPerSec).toBeGreaterThan(0);
    expect(r.putLatencyMs.count).toBeGreaterThan(0);
    expect(r.publishFailures).toBe(0);
    expect(r.model).toEqual(model(options));
  }, 120_000);
});
