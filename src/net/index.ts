/**
 * Networking: per-VM network namespaces with an identical TAP and guest
 * address in each ("network for clones"), a veth pair and NAT giving each
 * VM a unique host-side address from the IPAM range, and nftables rules
 * isolating VMs from each other, from the host (except exposed ports) and
 * from denied destinations. Leases live in the store. See docs/networking.md.
 *
 * This module runs programs only through the process module and must not
 * import VMM drivers, the VM lifecycle or the HTTP layer.
 */
export { NetworkManager, tbfArgs, type NetworkManagerOptions, type VmNetwork, type HostSetup } from './network-manager.js';
export type { ReconcileReport } from './reconcile.js';
export { NetworkExhaustedError, NetworkSetupFailedError, NetworkUnavailableError } from './errors.js';
export { DEFAULT_EGRESS_DENY, parseEgressRule, resolveEgressPolicy, type EgressPolicy, type EgressRule, type ResolvedEgressPolicy } from './egress-policy.js';
export { GUEST_LINK, guestKernelNetArg } from './guest-link.js';
export { SubnetAllocator, parseCidr, parseIpv4, formatCidr, formatIpv4, type Cidr, type SubnetSlot } from './ipam.js';
export { vmObjectNames, shortId, DEFAULT_NETNS_PREFIX, HOST_VETH_PREFIX, type VmObjectNames } from './names.js';
export { checkNetworkPrereqs, assertNetworkAvailable, type NetworkCheck, type NetworkCheckStatus } from './prereqs.js';
