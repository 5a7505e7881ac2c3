import type { LeaseRepository } from '../store/lease-repository.js';
import { HOST_VETH_PREFIX, VM_CHAIN_PREFIX, vmObjectNames } from './names.js';
import type { NetExec, Scope } from './net-exec.js';
import { HOST_TABLE } from './nft-rules.js';

/** What reconcile removed. */
export interface ReconcileReport {
  /** VM ids whose lease (and network) was removed because the VM is not live. */
  leases: string[];
  /** Orphan namespaces removed (no live VM, no lease). */
  namespaces: string[];
  /** Orphan host veth ends removed. */
  veths: string[];
  /** Orphan egress chains removed from the host table. */
  chains: string[];
}

export interface ReconcilerDeps {
  exec: NetExec;
  hostScope: Scope;
  netnsPrefix: string;
  leases: LeaseRepository;
  destroy(vmId: string): Promise<void>;
  removeChain(names: { chain: string; hostVeth: string }): Promise<void>;
  deleteLink(scope: Scope, name: string): Promise<void>;
  deleteNetns(name: string): Promise<void>;
}

/**
 * Daemon-restart reconciliation. Names are derived from VM ids (names.ts),
 * so the objects of live VMs are known without any other record: first
 * leased VMs that are gone are destroyed the normal way, then whatever else
 * carries our prefixes and belongs to no live VM is swept.
 */
export class Reconciler {
  constructor(private readonly d: ReconcilerDeps) {}

  async run(liveVmIds: ReadonlySet<string>): Promise<ReconcileReport> {
    const report: ReconcileReport = { leases: [], namespaces: [], veths: [], chains: [] };
    for (const lease of this.d.leases.list()) {
      if (liveVmIds.has(lease.vmId)) continue;
      await this.d.destroy(lease.vmId);
      report.leases.push(lease.vmId);
    }
    const live = [...liveVmIds].map((id) => vmObjectNames(id, this.d.netnsPrefix));
    const liveNs = new Set(live.map((n) => n.netns));
    const liveVeths = new Set(live.map((n) => n.hostVeth));
    const liveChains = new Set(live.map((n) => n.chain));

    for (const chain of await this.vmChains()) {
      if (liveChains.has(chain)) continue;
      // The map element is keyed by the veth whose name shares the chain's short id.
      await this.d.removeChain({ chain, hostVeth: `${HOST_VETH_PREFIX}${chain.slice(VM_CHAIN_PREFIX.length)}` });
      report.chains.push(chain);
    }
    for (const veth of await this.hostVeths()) {
      if (liveVeths.has(veth)) continue;
      await this.d.deleteLink(this.d.hostScope, veth);
      report.veths.push(veth);
    }
    for (const ns of await this.d.exec.listNetns()) {
      if (!ns.startsWith(this.d.netnsPrefix) || liveNs.has(ns)) continue;
      await this.d.deleteNetns(ns);
      report.namespaces.push(ns);
    }
    return report;
  }

  private async hostVeths(): Promise<string[]> {
    const out = await this.d.exec.ip(this.d.hostScope, ['-j', 'link', 'show']);
    const links = JSON.parse(out.stdout.toString() || '[]') as Array<{ ifname?: string }>;
    return links.map((l) => l.ifname ?? '').filter((n) => n.startsWith(HOST_VETH_PREFIX));
  }

  private async vmChains(): Promise<string[]> {
    const out = await this.d.exec.nftQuery(this.d.hostScope, ['-j', 'list', 'table', 'inet', HOST_TABLE], true);
    if (out.code !== 0) return []; // no table, no chains
    const doc = JSON.parse(out.stdout.toString()) as { nftables: Array<{ chain?: { name: string } }> };
    return doc.nftables.flatMap((o) => (o.chain && o.chain.name.startsWith(VM_CHAIN_PREFIX) ? [o.chain.name] : []));
  }
}
