/**
 * What the pools tell the event bus: allocations, failed allocations,
 * releases, and their counts. Counts change on every refill, allocation and
 * release, so a busy pool would flood the bus: `pool` events are coalesced
 * to at most one per pool per `minIntervalMs`, always with the counts of the
 * moment it is sent, and only when (ready, booting, allocated, target)
 * differ from the last one sent. Knows nothing about pools but their
 * names and counts (structural types), so pool code never imports the bus.
 */
import type { EventBus } from './bus.js';

/** The counts a `pool` event carries, read from the pools (PoolManager.list()). */
export interface PoolCounts {
  name: string;
  ready: number;
  booting: number;
  allocated: number;
  target: number;
}

export interface PoolEventOptions {
  /** At most one `pool` event per pool this often (default 250). */
  minIntervalMs?: number;
  /** Counts are also compared this often, for changes nobody signalled (the demand-following target drifts with time; default 1000; 0: never). */
  pollMs?: number;
}

/**
 * Publishes pool activity on `bus`. Its methods match the pools' activity
 * listener (src/pool, PoolActivity): pass the publisher itself. They never
 * throw and never block (publishing is synchronous and bounded; counts are
 * read later, on a timer). Call `close()` once when the daemon stops
 * (idempotent): pending count events are dropped.
 */
export class PoolEventPublisher {
  private readonly minIntervalMs: number;
  private readonly state = new Map<string, { key?: string; sentAt: number; timer?: NodeJS.Timeout }>();
  private readonly poll?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly bus: EventBus,
    private readonly counts: () => readonly PoolCounts[],
    options: PoolEventOptions = {},
  ) {
    this.minIntervalMs = options.minIntervalMs ?? 250;
    const pollMs = options.pollMs ?? 1000;
    if (pollMs > 0) {
      this.poll = setInterval(() => {
        for (const p of this.readAll()) this.changed(p.name);
      }, pollMs);
      this.poll.unref();
    }
  }

  allocated(pool: string, vmId: string, ms: number): void {
    if (!this.closed) this.bus.publish('allocation', { pool, vm_id: vmId, ms });
  }

  allocationFailed(pool: string, code: string, ms: number): void {
    if (!this.closed) this.bus.publish('allocation.failed', { pool, code, ms });
  }

  released(pool: string, vmId: string, reason: string): void {
    if (!this.closed) this.bus.publish('release', { pool, vm_id: vmId, reason });
  }

  /**
   * Pool `pool`'s counts may have changed. Cheap, may be called on every
   * change: the counts are read once the current turn of the event loop is
   * over (the pool's bookkeeping is then consistent) and no sooner than
   * `minIntervalMs` after the last event of this pool.
   */
  changed(pool: string): void {
    if (this.closed) return;
    let s = this.state.get(pool);
    if (!s) this.state.set(pool, (s = { sentAt: -Infinity }));
    if (s.timer) return;
    const entry = s;
    entry.timer = setTimeout(
      () => {
        entry.timer = undefined;
        this.flush(pool, entry);
      },
      Math.max(0, entry.sentAt + this.minIntervalMs - performance.now()),
    );
    entry.timer.unref();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.poll);
    for (const s of this.state.values()) clearTimeout(s.timer);
  }

  private flush(pool: string, entry: { key?: string; sentAt: number }): void {
    if (this.closed) return;
    const c = this.readAll().find((p) => p.name === pool);
    if (!c) return;
    const key = `${c.ready}/${c.booting}/${c.allocated}/${c.target}`;
    if (key === entry.key) return;
    entry.key = key;
    entry.sentAt = performance.now();
    this.bus.publish('pool', { pool, ready: c.ready, booting: c.booting, allocated: c.allocated, target: c.target });
  }

  /** The pools' counts; a failure to read them (a pool stopping) is no event, not an error. */
  private readAll(): readonly PoolCounts[] {
    try {
      return this.counts();
    } catch {
      return [];
    }
  }
}
