import { InvalidStateError } from '../errors/index.js';
import type { Db } from './database.js';

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
  constructor(private readonly db: Db) {}

  /**
   * Leases a subnet to `vmId`: `choose` receives the subnets already taken
   * and returns a free one, or null when none is left (then allocate returns
   * null and writes nothing). Throws INVALID_STATE when the VM already holds
   * a lease (release it first); `choose` must be synchronous and pure.
   */
  allocate(vmId: string, netns: string, choose: (taken: ReadonlySet<string>) => LeaseChoice | null): LeaseRecord | null {
    return this.db
      .transaction((): LeaseRecord | null => {
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
      .immediate();
  }

  /** Removes the VM's lease; returns whether there was one. Safe to call twice. */
  release(vmId: string): boolean {
    return this.db.prepare('DELETE FROM network_leases WHERE vm_id = ?').run(vmId).changes > 0;
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
