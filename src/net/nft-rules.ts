import type { EgressRule, ResolvedEgressPolicy } from './egress-policy.js';
import { HOST_VETH_PREFIX } from './names.js';

/**
 * nftables scripts as text, applied with `nft -f -` (one atomic kernel
 * transaction per script). Pure functions: unit-tested here, exercised for
 * real by test/net. Scripts use `add` (a no-op when the object exists) plus
 * `flush`, so applying one twice gives the same ruleset, never duplicates.
 */

/** Host-side table (in the host, or in `hostNetns` for tests). */
export const HOST_TABLE = 'tfc';
/** Verdict map: host veth name -> jump to that VM's egress chain. */
export const VM_EGRESS_MAP = 'vm_egress';
/** Table inside each VM namespace (NAT and the namespace's own protection). */
export const VM_TABLE = 'tfcvm';

const VM_IFACES = `"${HOST_VETH_PREFIX}*"`;

export interface HostRulesInput {
  /** IPAM range; masquerading applies to sources inside it. */
  rangeCidr: string;
  /** Host ports VMs may open connections to (TCP and UDP). */
  exposedPorts: readonly number[];
  /** Interface egress leaves by; null = no masquerade rule. */
  uplinkInterface: string | null;
  masquerade: boolean;
}

function portSet(ports: readonly number[]): string {
  return ports.length === 1 ? String(ports[0]) : `{ ${ports.join(', ')} }`;
}

function quoteIf(name: string): string {
  // Interface names come from names.ts / config; refuse anything that could break out of the string.
  if (!/^[A-Za-z0-9_.*@-]{1,15}$/.test(name)) throw new Error(`unsafe interface name for nft: ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/**
 * The base host table: VM-to-VM traffic dropped, VM-to-host traffic
 * dropped except `exposedPorts`, per-VM egress through the verdict map, no
 * new connections into VMs except from the host itself, masquerade out of
 * the uplink. Re-applying replaces the base rules and keeps per-VM chains
 * and map elements (they are never flushed here).
 */
export function renderHostBase(input: HostRulesInput): string {
  const t = `inet ${HOST_TABLE}`;
  const lines = [
    `add table ${t}`,
    `add map ${t} ${VM_EGRESS_MAP} { type ifname : verdict ; }`,
    `add chain ${t} forward { type filter hook forward priority filter ; policy accept ; }`,
    `add chain ${t} input { type filter hook input priority filter ; policy accept ; }`,
    `add chain ${t} postrouting { type nat hook postrouting priority srcnat ; policy accept ; }`,
    `flush chain ${t} forward`,
    `flush chain ${t} input`,
    `flush chain ${t} postrouting`,
    // Order matters: VM-to-VM is dropped before "established" can accept anything between two VMs.
    `add rule ${t} forward iifname ${VM_IFACES} oifname ${VM_IFACES} counter drop comment "VM to VM"`,
    `add rule ${t} forward ct state invalid iifname ${VM_IFACES} counter drop`,
    `add rule ${t} forward ct state established,related accept`,
    `add rule ${t} forward iifname vmap @${VM_EGRESS_MAP}`,
    `add rule ${t} forward iifname ${VM_IFACES} counter drop comment "VM without an egress chain"`,
    `add rule ${t} forward oifname ${VM_IFACES} counter drop comment "only the host opens connections to VMs"`,
    `add rule ${t} input iifname != ${VM_IFACES} accept`,
    `add rule ${t} input ct state established,related accept`,
    ...(input.exposedPorts.length > 0
      ? [`add rule ${t} input meta l4proto { tcp, udp } th dport ${portSet(input.exposedPorts)} accept comment "exposed ports"`]
      : []),
    `add rule ${t} input counter drop comment "VM to host"`,
  ];
  if (input.masquerade && input.uplinkInterface) {
    lines.push(`add rule ${t} postrouting oifname ${quoteIf(input.uplinkInterface)} ip saddr ${input.rangeCidr} masquerade`);
  }
  return lines.join('\n') + '\n';
}

function ruleMatch(r: EgressRule): string {
  const ports = r.ports ? ` meta l4proto { tcp, udp } th dport ${r.ports.from === r.ports.to ? r.ports.from : `${r.ports.from}-${r.ports.to}`}` : '';
  return `ip daddr ${r.cidr}${ports}`;
}

export interface VmChainInput {
  chain: string;
  hostVeth: string;
  /** The only source address the VM's traffic may carry (after the namespace's SNAT). */
  hostAddress: string;
  policy: ResolvedEgressPolicy;
}

/**
 * One VM's egress chain (allow rules, deny rules, then accept; IPv6 and
 * spoofed sources dropped) and its entry in the verdict map. Idempotent.
 * Precondition: the base table exists (renderHostBase applied).
 */
export function renderVmChain(input: VmChainInput): string {
  const t = `inet ${HOST_TABLE}`;
  const c = `${t} ${input.chain}`;
  return (
    [
      `add chain ${c}`,
      `flush chain ${c}`,
      `add rule ${c} meta nfproto ipv6 counter drop comment "VMs are IPv4 only"`,
      `add rule ${c} ip saddr != ${input.hostAddress} counter drop comment "spoofed source"`,
      ...input.policy.allow.map((r) => `add rule ${c} ${ruleMatch(r)} accept`),
      ...input.policy.deny.map((r) => `add rule ${c} ${ruleMatch(r)} counter drop`),
      `add rule ${c} accept`,
      `add element ${t} ${VM_EGRESS_MAP} { ${quoteIf(input.hostVeth)} : jump ${input.chain} }`,
    ].join('\n') + '\n'
  );
}

/**
 * Removes one VM's map element and chain. Idempotent: it first (re)adds
 * both, so the deletes never fail on a missing object. Precondition: the
 * base table exists (callers check; otherwise there is nothing to remove).
 */
export function renderVmChainRemoval(input: { chain: string; hostVeth: string }): string {
  const t = `inet ${HOST_TABLE}`;
  return (
    [
      `add chain ${t} ${input.chain}`,
      `add element ${t} ${VM_EGRESS_MAP} { ${quoteIf(input.hostVeth)} : jump ${input.chain} }`,
      `delete element ${t} ${VM_EGRESS_MAP} { ${quoteIf(input.hostVeth)} }`,
      `flush chain ${t} ${input.chain}`,
      `delete chain ${t} ${input.chain}`,
    ].join('\n') + '\n'
  );
}

export interface VmNamespaceRulesInput {
  tapName: string;
  nsVeth: string;
  guestIp: string;
  gatewayIp: string;
  hostAddress: string;
  hostVethIp: string;
  exposedPorts: readonly number[];
}

/**
 * The table inside a VM namespace: DNAT hostAddress -> guest, SNAT guest ->
 * hostAddress, exposed host ports reachable at the gateway address (so
 * every clone uses the same address for host services), and nothing else
 * of the namespace reachable from the guest. Applied once into a fresh
 * namespace.
 */
export function renderVmNamespace(input: VmNamespaceRulesInput): string {
  const t = `ip ${VM_TABLE}`;
  const tap = quoteIf(input.tapName);
  const veth = quoteIf(input.nsVeth);
  return (
    [
      `add table ${t}`,
      `add chain ${t} prerouting { type nat hook prerouting priority dstnat ; policy accept ; }`,
      `add chain ${t} postrouting { type nat hook postrouting priority srcnat ; policy accept ; }`,
      `add chain ${t} input { type filter hook input priority filter ; policy accept ; }`,
      `add chain ${t} forward { type filter hook forward priority filter ; policy accept ; }`,
      `add rule ${t} prerouting iifname ${veth} ip daddr ${input.hostAddress} dnat to ${input.guestIp}`,
      ...(input.exposedPorts.length > 0
        ? [
            `add rule ${t} prerouting iifname ${tap} ip daddr ${input.gatewayIp} meta l4proto { tcp, udp } th dport ${portSet(input.exposedPorts)} dnat to ${input.hostVethIp}`,
          ]
        : []),
      `add rule ${t} postrouting oifname ${veth} ip saddr ${input.guestIp} snat to ${input.hostAddress}`,
      `add rule ${t} input iifname ${tap} ct state established,related accept`,
      `add rule ${t} input iifname ${tap} icmp type echo-request accept`,
      `add rule ${t} input iifname ${tap} counter drop`,
      `add rule ${t} forward iifname ${tap} ip saddr != ${input.guestIp} counter drop comment "spoofed source"`,
    ].join('\n') + '\n'
  );
}
