import { InvalidArgumentError } from '../errors/index.js';
import type { PoolConfig } from '../config/index.js';

/**
 * Allocation leases of one pool: a timer per allocated VM that fires once
 * when its lease runs out (the pool then destroys or recycles the VM).
 * Owns only timers and the TTL rules; never touches VMs itself.
 */

/** The TTL of a lease: `requested` or the pool's lease_ms; throws INVALID_ARGUMENT above max_lease_ms or below 1 ms. */
export function leaseTtl(config: Pick<PoolConfig, 'name' | 'leaseMs' | 'maxLeaseMs'>, requested: number | undefined): number {
  const ttl = requested ?? config.leaseMs;
  if (!Number.isInteger(ttl) || ttl < 1) throw new InvalidArgumentError(`ttl_ms must be a positive integer (milliseconds), got ${ttl}`);
  if (ttl > config.maxLeaseMs) {
    throw new InvalidArgumentError(
      `ttl_ms ${ttl} is above the maximum lease of pool ${config.name} (${config.maxLeaseMs} ms, pools.${config.name}.max_lease_ms); ask for at most ${config.maxLeaseMs} and extend with POST /v1/vms/ID/keepalive`,
      { details: { pool: config.name, ttl_ms: ttl, max_lease_ms: config.maxLeaseMs } },
    );
  }
  return ttl;
}

/** One timer per VM; starting a lease again replaces the old timer (keepalive). */
export class LeaseTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  /** Starts (or restarts) the lease of `vmId`; `onExpire` runs once, unless cleared first. Returns the expiry (epoch ms). */
  start(vmId: string, ttlMs: number, onExpire: () => void): number {
    this.clear(vmId);
    const timer = setTimeout(() => {
      this.timers.delete(vmId);
      onExpire();
    }, ttlMs);
    // A lease never keeps the process alive (a CLI or test that stops the pool exits).
    timer.unref();
    this.timers.set(vmId, timer);
    return Date.now() + ttlMs;
  }

  /** Ends the lease without expiry. Safe to call for a VM without one. */
  clear(vmId: string): void {
    clearTimeout(this.timers.get(vmId));
    this.timers.delete(vmId);
  }

  clearAll(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  get size(): number {
    return this.timers.size;
  }
}
