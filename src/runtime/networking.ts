/**
 * Networking for one tfc process (daemon, CLI or bench): the network manager
 * and the sweep of leftovers of dead processes. Used by composeRuntime only.
 */
import type { Config } from '../config/index.js';
import { NetworkManager, type ReconcileReport } from '../net/index.js';
import { LeaseRepository } from '../store/lease-repository.js';
import type { Db, VmRepository } from '../store/index.js';

/**
 * The network manager for this process, or undefined when no profile
 * enables networking (then nothing on the host is touched). Sets up the host
 * side (forwarding, the nftables table) and removes namespaces, veths, rules
 * and leases of VMs no live tfc process owns. Throws NETWORK_UNAVAILABLE when
 * networking is configured but the host cannot do it (not root, no nft).
 */
export async function prepareNetworking(
  config: Config,
  db: Db,
  repo: VmRepository,
): Promise<{ manager: NetworkManager; reconciled: ReconcileReport } | undefined> {
  if (!Object.values(config.profiles).some((p) => p.network.enabled)) return undefined;
  const manager = new NetworkManager({
    leases: new LeaseRepository(db),
    rangeCidr: config.network.range,
    prefixPerVm: config.network.prefixPerVm,
    exposedPorts: config.network.exposedPorts,
    masquerade: config.network.masquerade,
    ...(config.network.uplink ? { uplinkInterface: config.network.uplink } : {}),
  });
  await manager.ensureHost();
  // Networks of VMs whose owner process is gone are leftovers; the others are
  // in use (asked again before each sweep: another process may be creating VMs).
  const reconciled = await manager.reconcile(() => new Set(repo.ownedByLiveProcesses().map((v) => v.id)));
  return { manager, reconciled };
}
