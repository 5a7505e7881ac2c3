import { InvalidArgumentError, InvalidStateError } from '../../errors/index.js';
import { DEFAULT_DETACHED_LEASE_MS, MAX_DETACHED_LEASE_MS } from './limits.js';

/**
 * Leases of VMs that belong to no pool: forks of a snapshot and VMs resumed
 * from a pause to disk. Like a pool allocation they run for `ttl_ms`
 * (default 10 minutes, the pools' default lease_ms), are extended with
 * POST /v1/vms/{id}/keepalive, and are destroyed when the lease runs out,
 * so a client that forgets them does not keep them forever. Owns only
 * timers and the TTL rules; the expiry callback destroys the VM.
 */

export { DEFAULT_DETACHED_LEASE_MS, MAX_DETACHED_LEASE_MS };

interface Lease {
  ttlMs: number;
  expiresAt: number;
  timer: NodeJS.Timeout;
}

export class DetachedLeases {
  private readonly leases = new Map<string, Lease>();

  /** `onExpire(vmId)` runs once when a lease runs out (not when it is ended). */
  constructor(private readonly onExpire: (vmId: string) => void) {}

  /** Checks a requested TTL; returns it or the default. Throws InvalidArgumentError naming the bounds. */
  static ttl(requested: number | undefined): number {
    const ttl = requested ?? DEFAULT_DETACHED_LEASE_MS;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_DETACHED_LEASE_MS) {
      throw new InvalidArgumentError(
        `ttl_ms must be an integer from 1 to ${MAX_DETACHED_LEASE_MS} (24 h), got ${ttl}; extend a lease later with POST /v1/vms/ID/keepalive`,
        { details: { ttl_ms: ttl, max_lease_ms: MAX_DETACHED_LEASE_MS } },
      );
    }
    return ttl;
  }

  /** Starts (or restarts) the lease of `vmId`. Returns the expiry (epoch ms). Throws as `ttl`. */
  start(vmId: string, ttlMs?: number): number {
    const ttl = DetachedLeases.ttl(ttlMs);
    this.end(vmId);
    const timer = setTimeout(() => {
      this.leases.delete(vmId);
      this.onExpire(vmId);
    }, ttl);
    // A lease never keeps the process alive.
    timer.unref();
    const expiresAt = Date.now() + ttl;
    this.leases.set(vmId, { ttlMs: ttl, expiresAt, timer });
    return expiresAt;
  }

  /** Renews the lease of `vmId` for `ttlMs` (default: the TTL it was started with). Throws InvalidStateError without one. */
  keepalive(vmId: string, ttlMs?: number): number {
    const lease = this.leases.get(vmId);
    if (!lease) throw new InvalidStateError(`VM ${vmId} has no lease to extend (it is not from a pool, a fork or a resume)`, { details: { vm_id: vmId } });
    return this.start(vmId, ttlMs ?? lease.ttlMs);
  }

  has(vmId: string): boolean {
    return this.leases.has(vmId);
  }

  /** When the lease of `vmId` runs out (epoch ms), if it has one. */
  expiresAt(vmId: string): number | undefined {
    return this.leases.get(vmId)?.expiresAt;
  }

  /** Ends the lease without expiry (the VM was destroyed). Safe for a VM without one. */
  end(vmId: string): void {
    const lease = this.leases.get(vmId);
    if (!lease) return;
    clearTimeout(lease.timer);
    this.leases.delete(vmId);
  }

  /** Ends every lease (the service is closing). */
  endAll(): void {
    for (const vmId of [...this.leases.keys()]) this.end(vmId);
  }

  get size(): number {
    return this.leases.size;
  }
}
