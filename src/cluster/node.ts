/**
 * One daemon's part of the cluster, as the daemon starts and stops it: the
 * etcd client, the membership (lease, keepalive, watch), the publisher of
 * pool counts (fed by sampling the pools once per publish interval, which
 * costs no I/O: the publisher writes only what changed) and the gateway the
 * API routes through. `start` never waits for etcd to answer.
 */
import { availableParallelism, totalmem } from 'node:os';
import type { ClusterConfig } from './config.js';
import { createEtcdClient } from './etcd-client.js';
import { ClusterGateway } from './forward.js';
import { Membership } from './membership.js';
import { PoolPublisher } from './publisher.js';
import type { PoolCounts, PublishedVm } from './view.js';

export interface ClusterNodeOptions {
  version: string;
  /** The node's pools and their counts now (PoolManager.list()). */
  readPools: () => Array<PoolCounts & { name: string; max: number }>;
  /** VMs on this node now. */
  countVms: () => number;
  /** This node's VMs now, published (bounded) so that the others list them as lost if it dies (`localVmList`); without it, the count alone. */
  listVms?: () => PublishedVm[];
  log?: (level: 'info' | 'warn', message: string, data?: Record<string, unknown>) => void;
}

export interface ClusterNode {
  membership: Membership;
  publisher: PoolPublisher;
  gateway: ClusterGateway;
  /** Revokes the lease (the others see this node leave at once), stops publishing, closes the client. Never throws; idempotent. */
  stop(): Promise<void>;
}

/** What `localVmList` needs of the VM service and the pool manager (structural: this module does not import them). */
export interface LocalVmSources {
  service: { list(): ReadonlyArray<{ id: string }> };
  pools: { list(): ReadonlyArray<{ name: string }>; get(name: string): { allMembers(): ReadonlyArray<{ vm: { id: string }; status: 'ready' | 'allocated' }> } };
}

/**
 * This node's VMs as the cluster publishes them: each VM of the service with
 * its pool and pool state; VMs outside pools are `allocated` (someone made
 * them and uses them) with pool null.
 */
export function localVmList({ service, pools }: LocalVmSources): PublishedVm[] {
  const members = new Map<string, { pool: string; state: 'ready' | 'allocated' }>();
  for (const p of pools.list()) for (const m of pools.get(p.name).allMembers()) members.set(m.vm.id, { pool: p.name, state: m.status });
  return service.list().map((vm) => {
    const m = members.get(vm.id);
    return { id: vm.id, pool: m?.pool ?? null, state: m?.state ?? 'allocated' };
  });
}

export async function startClusterNode(config: ClusterConfig, options: ClusterNodeOptions): Promise<ClusterNode> {
  const log = options.log ?? (() => undefined);
  const client = createEtcdClient(config);
  const pools = options.readPools();
  const capacity = {
    vcpus: availableParallelism(),
    memory_mib: Math.floor(totalmem() / 2 ** 20),
    // Room for VMs: what the pools may hold together.
    max_vms: Math.max(
      1,
      pools.reduce((sum, p) => sum + p.max, 0),
    ),
  };
  const membership = new Membership(client, config, { version: options.version, capacity }, { log });
  const publisher = new PoolPublisher(client, membership, config, {
    onError: (err) => log('warn', 'cluster: publishing pool counts failed; retrying at the next interval', { error: err.message }),
  });
  let known = new Set<string>();
  const sample = () => {
    try {
      const now = new Set<string>();
      for (const p of options.readPools()) {
        now.add(p.name);
        publisher.update(p.name, { ready: p.ready, allocated: p.allocated, target: p.target });
      }
      for (const name of known) if (!now.has(name)) publisher.removePool(name);
      known = now;
      publisher.setVms(options.listVms ? options.listVms() : options.countVms());
    } catch (err) {
      log('warn', 'cluster: reading the pool counts failed', { error: (err as Error).message });
    }
  };
  sample();
  // Sampling is local and cheap; the publisher coalesces and rate-limits the writes.
  const timer = setInterval(sample, Math.max(100, Math.floor(config.publishIntervalMs / 2)));
  timer.unref();
  await membership.start();
  const gateway = new ClusterGateway(membership, {
    token: config.token,
    connectTimeoutMs: config.callTimeoutMs,
    localPools: () => Object.fromEntries(options.readPools().map((p) => [p.name, { ready: p.ready, allocated: p.allocated, target: p.target }])),
    localVms: options.countVms,
  });
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      clearInterval(timer);
      await publisher.stop().catch(() => undefined);
      await membership.stop();
      gateway.close();
      await client.close();
    })());
  return { membership, publisher, gateway, stop };
}
