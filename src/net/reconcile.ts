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

  /**
   * `liveVmIds` may be a function: it is then asked again before each sweep,
   * so VMs another process creates meanwhile are not taken for orphans.
   * Every VM holding a lease after the lease pass counts as live too (its
   * network is being built: the lease is taken first).
   */
  async run(liveVmIds: ReadonlySet<string> | (() => ReadonlySet<string>)): Promise<ReconcileReport> {
    const liveIds = typeof liveVmIds === 'function' ? liveVmIds : () => liveVmIds;
    const report: ReconcileReport = { leases: [], namespaces: [], veths: [], chains: [] };
    const initial = liveIds();
    for (const lease of this.d.leases.list()) {
      if (initial.has(lease.vmId)) continue;
      await this.d.destroy(lease.vmId);
      report.leases.push(lease.vmId);
    }
    const liveNames = () => {
      const ids = new Set([...liveIds(), ...this.d.leases.list().map((l) => l.vmId)]);
      const names = [...ids].map((id) => vmObjectNames(id, this.d.netnsPrefix));
      return { ns: new Set(names.map((n) => n.netns)), veths: new Set(names.map((n) => n.hostVeth)), chains: new Set(names.map((n) => n.chain)) };
    };

    const chains = await this.vmChains();
    const liveChains = liveNames().chains;
    for (const chain of chains) {
      if (liveChains.has(chain)) continue;
      // The map element is keyed by the veth whose name shares the chain's short id.
      await this.d.removeChain({ chain, hostVeth: `${HOST_VETH_PREFIX}${chain.slice(VM_CHAIN_PREFIX.length)}` });
      report.chains.push(chain);
    }
    const veths = await this.hostVeths();
    const liveVeths = liveNames().veths;
    for (const veth of veths) {
      if (liveVeths.has(veth)) continue;
      await this.d.deleteLink(this.d.hostScope, veth);
      report.veths.push(veth);
    }
    const namespaces = await this.d.exec.listNetns();
    const liveNs = liveNames().ns;
    for (const ns of namespaces) {
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
