/**
 * Publishes this node's pool counts (ready / allocated / target per pool)
 * and its VMs (the count, and the ids of at most MAX_PUBLISHED_VMS with their
 * pool and state, so that others can list them as lost if this node dies) to etcd, attached to the membership lease so they vanish
 * with the node. Rate-limited and coalescing: `update()` only records the
 * wanted state; at most one write (one etcd transaction holding every
 * changed key) goes out per `publish_interval_ms`, and none when nothing
 * changed since the last write. The etcd write load of a node is therefore
 * at most 1000 / publish_interval_ms transactions per second, however fast
 * its pools churn (docs/scaling.md).
 *
 * It never throws into its caller: a failed write is counted, kept dirty and
 * retried at the next interval; while the node has no lease, nothing is
 * written, and everything is written again under the new lease.
 */
import type { Etcd3 } from 'etcd3';
import type { ClusterConfig } from './config.js';
import { bounded } from './etcd-client.js';
import { MAX_PUBLISHED_VMS, NODE_LOAD_KEY, type NodeLoad, type PoolCounts, type PublishedVm } from './view.js';

export type PublisherConfig = Pick<ClusterConfig, 'nodeName' | 'keyPrefix' | 'publishIntervalMs' | 'callTimeoutMs' | 'endpoints'>;

export interface PublisherStats {
  /** Transactions sent to etcd that succeeded (each is one raft proposal). */
  writes: number;
  /** Keys put (or deleted) by those transactions. */
  keysWritten: number;
  /** `update()` / `setVms()` calls that changed the wanted state. */
  changes: number;
  /** Writes that failed (retried at the next interval). */
  failures: number;
  /** Duration of each successful write in ms (the last 1024, oldest first). */
  latenciesMs: number[];
}

export interface PublisherOptions {
  now?: () => number;
  /** Called with each failed write's error (diagnostics; default none). Must not throw. */
  onError?: (err: Error) => void;
}

const MAX_LATENCIES = 1024;

/** What the publisher needs of a `Membership`: its current lease, and word when it changes. */
export interface LeaseSource {
  readonly lease: string | null;
  on(event: 'registered', listener: (leaseId: string) => void): unknown;
  off(event: 'registered', listener: (leaseId: string) => void): unknown;
}

/** The value written for a key, or null for a key to delete. */
type Wanted = Map<string, string | null>;

export class PoolPublisher {
  private readonly wanted: Wanted = new Map();
  /** What etcd holds under the current lease (key -> value). */
  private readonly written = new Map<string, string>();
  private readonly now: () => number;
  private readonly onError: (err: Error) => void;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | null = null;
  private lastWriteMs = -Infinity;
  private stopped = false;
  private readonly onRegistered = () => {
    // A new lease: everything written under the old one is gone.
    this.written.clear();
    this.kick();
  };
  readonly stats: PublisherStats = { writes: 0, keysWritten: 0, changes: 0, failures: 0, latenciesMs: [] };

  constructor(
    private readonly client: Etcd3,
    private readonly membership: LeaseSource,
    private readonly config: PublisherConfig,
    options: PublisherOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.onError = options.onError ?? (() => undefined);
    membership.on('registered', this.onRegistered);
  }

  private key(name: string): string {
    return `${this.config.keyPrefix}pools/${this.config.nodeName}/${name}`;
  }

  /** Records a pool's counts (written within one interval if they differ from what etcd holds). Never throws. */
  update(pool: string, counts: PoolCounts): void {
    this.want(this.key(pool), JSON.stringify({ ready: counts.ready, allocated: counts.allocated, target: counts.target }));
  }

  /**
   * Records the node's VMs: their list (the first MAX_PUBLISHED_VMS by id are
   * published with the count, and `truncated` above that), or a count alone
   * (published as a truncated empty list). It goes out in the same
   * transaction as the pool counts, and only when it changed. Never throws.
   */
  setVms(vms: number | readonly PublishedVm[]): void {
    let load: NodeLoad;
    if (typeof vms === 'number') load = { vms, list: [], truncated: vms > 0 };
    else {
      const sorted = [...vms].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const list = sorted.slice(0, MAX_PUBLISHED_VMS).map(({ id, pool, state }) => ({ id, pool, state }));
      load = { vms: vms.length, list, truncated: vms.length > list.length };
    }
    this.want(this.key(NODE_LOAD_KEY), JSON.stringify(load));
  }

  /** Forgets a pool (its key is deleted at the next write). Never throws. */
  removePool(pool: string): void {
    this.want(this.key(pool), null);
  }

  private want(key: string, value: string | null): void {
    if (this.stopped) return;
    const before = this.wanted.has(key) ? this.wanted.get(key) : (this.written.get(key) ?? null);
    if (before === value) return;
    this.wanted.set(key, value);
    this.stats.changes++;
    this.kick();
  }

  /** Keys whose wanted value differs from what etcd holds. */
  private pending(): Array<[string, string | null]> {
    return [...this.wanted].filter(([k, v]) => (this.written.get(k) ?? null) !== v);
  }

  /** Schedules a write at the earliest moment the rate limit allows, unless one is already due. */
  private kick(): void {
    if (this.stopped || this.timer !== undefined || this.flushing) return;
    const delay = Math.max(0, this.lastWriteMs + this.config.publishIntervalMs - this.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delay);
  }

  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = this.write().then((again) => {
      this.flushing = null;
      // Changes that arrived during the write, or a failed write: next
      // interval. Without a lease, `registered` kicks instead (no busy loop
      // while etcd is away).
      if (again && this.pending().length > 0) this.kick();
    });
    return this.flushing;
  }

  /** One transaction of everything pending; resolves (never rejects) to whether to schedule another. */
  private async write(): Promise<boolean> {
    const lease = this.membership.lease;
    const batch = this.pending();
    // No lease: wait for `registered` (which kicks again).
    if (this.stopped || lease === null || batch.length === 0) return false;
    this.lastWriteMs = this.now();
    const started = performance.now();
    const txn = this.client.kv.txn({
      compare: [],
      success: batch.map(([key, value]) =>
        value === null ? { request_delete_range: { key: Buffer.from(key) } } : { request_put: { key: Buffer.from(key), value: Buffer.from(value), lease } },
      ),
      failure: [],
    });
    try {
      await bounded(txn, this.config.callTimeoutMs, 'publish pool counts', this.config.endpoints);
    } catch (err) {
      this.stats.failures++;
      try {
        this.onError(err as Error);
      } catch {
        // A diagnostics hook must not stop publishing.
      }
      return true;
    }
    // The lease may have changed while the write was in flight: then these
    // keys went to the old lease, and everything is written again.
    if (this.membership.lease !== lease) return true;
    this.stats.writes++;
    this.stats.keysWritten += batch.length;
    this.stats.latenciesMs.push(performance.now() - started);
    if (this.stats.latenciesMs.length > MAX_LATENCIES) this.stats.latenciesMs.shift();
    for (const [key, value] of batch) {
      if (value === null) {
        this.written.delete(key);
        if (this.wanted.get(key) === null) this.wanted.delete(key);
      } else this.written.set(key, value);
    }
    return true;
  }

  /** True when etcd holds everything that was asked for (under the current lease). */
  get settled(): boolean {
    return this.pending().length === 0 && this.flushing === null;
  }

  /**
   * Stops publishing (the keys go with the lease when the membership stops).
   * Waits for a write in flight (bounded by call_timeout_ms). Safe to call twice.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.membership.off('registered', this.onRegistered);
    await this.flushing;
  }
}
