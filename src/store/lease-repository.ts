import { InvalidStateError } from '../errors/index.js';
import type { Db } from './database.js';
import { guardStore } from './store-error.js';

/** One VM's IPAM lease: its slice of `network.range` and its namespace. */
export interface LeaseRecord {
  vmId: string;
  /** The VM's unique address as seen from the host. */
  hostAddress: string;
  /** The VM's subnet of the range, e.g. "10.200.0.4/30". */
  subnet: string;
  netns: string;
  createdAt: string;
}

/** What a lease is made of; chosen by the caller's allocator. */
export interface LeaseChoice {
  subnet: string;
  hostAddress: string;
}

interface LeaseRow {
  vm_id: string;
  host_address: string;
  subnet: string;
  netns: string;
  created_at: string;
}

function fromRow(r: LeaseRow): LeaseRecord {
  return { vmId: r.vm_id, hostAddress: r.host_address, subnet: r.subnet, netns: r.netns, createdAt: r.created_at };
}

/**
 * Network leases (table `network_leases`). Allocation runs in one
 * IMMEDIATE transaction (the write lock is taken before reading what is
 * taken), so two processes sharing the database never lease one subnet twice.
 */
export class LeaseRepository {
  /**
   * Leases whose release failed in the store (disk full, read-only): their
   * network objects are gone, so they are deleted by the next write that
   * succeeds (allocate or release) instead of waiting for a daemon restart.
   * Bounded by the number of leases (one entry per VM).
   */
  private readonly unreleased = new Set<string>();

  constructor(private readonly db: Db) {}

  /** VM ids whose lease release is still to be written (see `release`). */
  get pendingReleases(): readonly string[] {
    return [...this.unreleased];
  }

  private deletePending(): void {
    if (this.unreleased.size === 0) return;
    const del = this.db.prepare('DELETE FROM network_leases WHERE vm_id = ?');
    for (const id of this.unreleased) del.run(id);
  }

  /**
   * Leases a subnet to `vmId`: `choose` receives the subnets already taken
   * and returns a free one, or null when none is left (then allocate returns
   * null and writes nothing). Throws INVALID_STATE when the VM already holds
   * a lease (release it first); `choose` must be synchronous and pure.
   */
  allocate(vmId: string, netns: string, choose: (taken: ReadonlySet<string>) => LeaseChoice | null): LeaseRecord | null {
    return guardStore(`lease a network address to VM ${vmId}`, this.db.name, () =>
      this.afterPending(() =>
        this.db
          .transaction((): LeaseRecord | null => {
            this.deletePending();
            const existing = this.get(vmId);
            if (existing) {
              throw new InvalidStateError(`VM ${vmId} already holds network lease ${existing.hostAddress} (${existing.subnet}); destroy its network first`, {
                details: { vm_id: vmId, host_address: existing.hostAddress },
              });
            }
            const taken = new Set((this.db.prepare('SELECT subnet FROM network_leases').all() as Array<{ subnet: string }>).map((r) => r.subnet));
            const choice = choose(taken);
            if (!choice) return null;
            const record: LeaseRecord = { vmId, hostAddress: choice.hostAddress, subnet: choice.subnet, netns, createdAt: new Date().toISOString() };
            this.db
              .prepare('INSERT INTO network_leases (vm_id, host_address, subnet, netns, created_at) VALUES (@vmId, @hostAddress, @subnet, @netns, @createdAt)')
              .run(record);
            return record;
          })
          .immediate(),
      ),
    );
  }

  /**
   * Removes the VM's lease; returns whether there was one. Safe to call
   * twice. Throws STORE_ERROR when the store refuses; the release is then
   * retried by the next allocate or release of this repository (and
   * reconciliation at daemon start sweeps it too).
   */
  release(vmId: string): boolean {
    this.unreleased.add(vmId);
    return guardStore(`release the network lease of VM ${vmId}`, this.db.name, () =>
      this.afterPending(() =>
        this.db.transaction(() => {
          const del = this.db.prepare('DELETE FROM network_leases WHERE vm_id = ?');
          let had = false;
          for (const id of this.unreleased) {
            const n = del.run(id).changes;
            if (id === vmId) had = n > 0;
          }
          return had;
        })(),
      ),
    );
  }

  /** Runs `fn`; when it committed, the pending releases it wrote are done. */
  private afterPending<T>(fn: () => T): T {
    const pending = [...this.unreleased];
    const result = fn();
    for (const id of pending) this.unreleased.delete(id);
    return result;
  }

  get(vmId: string): LeaseRecord | null {
    const row = this.db.prepare('SELECT * FROM network_leases WHERE vm_id = ?').get(vmId) as LeaseRow | undefined;
    return row ? fromRow(row) : null;
  }

  /** Every lease, oldest first. */
  list(): LeaseRecord[] {
    return (this.db.prepare('SELECT * FROM network_leases ORDER BY created_at, vm_id').all() as LeaseRow[]).map(fromRow);
  }
}
