import { ConfigInvalidError, InvalidStateError } from '../errors/index.js';
import { netnsExecPrefix } from '../process/index.js';
import type { LeaseRepository } from '../store/lease-repository.js';
import { CleanupStack } from '../steps/index.js';
import { resolveEgressPolicy, type EgressPolicy } from './egress-policy.js';
import { NetworkExhaustedError, NetworkSetupFailedError } from './errors.js';
import { GUEST_LINK, GUEST_LINK_CIDR } from './guest-link.js';
import { formatCidr, formatIpv4, parseCidr, SubnetAllocator } from './ipam.js';
import { assertIfName, assertNetnsPrefix, DEFAULT_NETNS_PREFIX, NS_VETH_NAME, vmObjectNames } from './names.js';
import { NetExec, type Scope } from './net-exec.js';
import { HOST_TABLE, renderHostBase, renderVmChain, renderVmChainRemoval, renderVmNamespace } from './nft-rules.js';
import { assertNetworkAvailable } from './prereqs.js';
import { Reconciler, type ReconcileReport } from './reconcile.js';

/**
 * Per-VM network namespaces ("network for clones"): every VM namespace holds
 * the same TAP and guest address; a veth pair and NAT give each VM a unique
 * address from the IPAM range on the host side; one nftables table on the
 * host isolates VMs and applies each VM's egress policy. See
 * docs/networking.md for the topology. Knows nothing of VMMs or HTTP.
 */

export interface NetworkManagerOptions {
  /**
   * When set, every host-side operation (host veth ends, routes, the `inet
   * tfc` table, the forwarding sysctl) happens inside this existing network
   * namespace instead of the real host. Used by tests. Default: the real host.
   */
  hostNetns?: string;
  /** IPAM range (config `network.range`). Default '10.200.0.0/16'. */
  rangeCidr?: string;
  /** Prefix length of each VM's subnet (config `network.prefix_per_vm`). Default 30. */
  prefixPerVm?: number;
  leases: LeaseRepository;
  /** Interface VM egress is masqueraded out of. Default: the default route's device in the host scope (none: no masquerade). */
  uplinkInterface?: string;
  /** Host ports VMs may connect to (TCP and UDP), at any host address or at the gateway 172.16.0.1. Default []. */
  exposedPorts?: number[];
  /** Masquerade VM egress out of the uplink. Default true; false when the upstream routes the range back to this host. */
  masquerade?: boolean;
  /** Prefix of VM namespace names; reconcile only touches namespaces with it. Default 'tfc-'. */
  netnsPrefix?: string;
  /**
   * Tests only: instead of a TAP (which has no carrier without a VMM),
   * `tap0` becomes one end of a veth pair whose other end (`peerName`,
   * default 'eth0') is moved into the existing namespace `peerNetns(vmId)`,
   * where a test plays the guest.
   */
  tapStandIn?: { peerNetns(vmId: string): string; peerName?: string };
  /** Limit per helper command. Default 10000 ms. */
  commandTimeoutMs?: number;
}

/** One VM's network, as the VMM driver and the API need it. */
export interface VmNetwork {
  vmId: string;
  /** Network namespace the VMM runs in (`spawnPrefix`). */
  netns: string;
  /** TAP inside the namespace, identical for every VM ('tap0'). */
  tapName: string;
  /** Guest address, identical for every VM ('172.16.0.2'). */
  guestIp: string;
  guestPrefix: number;
  /** Guest default gateway ('172.16.0.1', on the TAP); exposed host ports are reachable here too. */
  gatewayIp: string;
  guestMac: string;
  /** The VM's unique address as seen from the host (DNATed to guestIp). */
  hostAddress: string;
  /** Host end of the VM's veth pair (in the host or hostNetns). */
  hostVeth: string;
  /** Namespace end of the veth pair ('veth0'). */
  nsVeth: string;
  /** Address of the host veth end (the namespace's default gateway). */
  hostVethIp: string;
  /** The VM's leased subnet of the range. */
  subnet: string;
  bandwidthMbit: number | null;
}

/** What ensureHost set up. */
export interface HostSetup {
  uplinkInterface: string | null;
  masquerading: boolean;
}

export class NetworkManager {
  private readonly hostScope: Scope;
  private readonly allocator: SubnetAllocator;
  private forwardingBefore: string | undefined;
  private readonly exposedPorts: number[];
  private readonly netnsPrefix: string;
  private readonly exec: NetExec;
  private hostReady: Promise<HostSetup> | null = null;
  private available = false;

  constructor(private readonly options: NetworkManagerOptions) {
    this.hostScope = options.hostNetns ?? null;
    this.allocator = new SubnetAllocator(options.rangeCidr ?? '10.200.0.0/16', options.prefixPerVm ?? 30, GUEST_LINK_CIDR);
    this.exposedPorts = [...new Set(options.exposedPorts ?? [])].sort((a, b) => a - b);
    for (const p of this.exposedPorts) {
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw new ConfigInvalidError(`network.exposed_ports: ${p} is not an integer from 1 to 65535`);
    }
    if (options.uplinkInterface !== undefined) assertIfName(options.uplinkInterface);
    this.netnsPrefix = assertNetnsPrefix(options.netnsPrefix ?? DEFAULT_NETNS_PREFIX);
    this.exec = new NetExec({ timeoutMs: options.commandTimeoutMs });
  }

  /** How many VM networks the range holds. */
  get capacity(): number {
    return this.allocator.capacity;
  }

  private assertAvailable(): void {
    if (this.available) return;
    assertNetworkAvailable();
    this.available = true;
  }

  /**
   * Turns on IPv4 forwarding and (re)applies the base `inet tfc` table in
   * the host scope. Idempotent: concurrent and repeated calls share one
   * setup; per-VM chains survive it. create() calls it on first use.
   * Throws NETWORK_UNAVAILABLE or NETWORK_SETUP_FAILED.
   */
  ensureHost(): Promise<HostSetup> {
    if (!this.hostReady) {
      this.hostReady = this.setUpHost().catch((err: unknown) => {
        this.hostReady = null; // let a later call retry
        throw err;
      });
    }
    return this.hostReady;
  }

  private async setUpHost(): Promise<HostSetup> {
    this.assertAvailable();
    try {
      const uplink = this.options.uplinkInterface ?? (await this.defaultRouteDevice());
      const masquerading = (this.options.masquerade ?? true) && uplink !== null;
      // Remember what forwarding was, so removeHost can put it back.
      this.forwardingBefore ??= await this.exec.sysctlGet(this.hostScope, 'net.ipv4.ip_forward');
      await this.exec.sysctl(this.hostScope, 'net.ipv4.ip_forward', '1');
      await this.exec.nft(
        this.hostScope,
        renderHostBase({ rangeCidr: formatCidr(this.allocator.range), exposedPorts: this.exposedPorts, uplinkInterface: uplink, masquerade: masquerading }),
      );
      return { uplinkInterface: uplink, masquerading };
    } catch (err) {
      throw new NetworkSetupFailedError(
        `could not prepare host networking${this.hostScope ? ` in namespace ${this.hostScope}` : ''}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  private async defaultRouteDevice(): Promise<string | null> {
    const out = await this.exec.ip(this.hostScope, ['-j', 'route', 'show', 'default']);
    const routes = JSON.parse(out.stdout.toString() || '[]') as Array<{ dev?: string }>;
    return routes.find((r) => r.dev)?.dev ?? null;
  }

  /**
   * Creates the VM's namespace, TAP, veth pair, addresses, routes, NAT and
   * egress chain, and leases its host address. Each created resource
   * registers its undo: on failure everything is removed and the lease
   * released before NETWORK_SETUP_FAILED (naming the step) is thrown.
   * Throws NETWORK_EXHAUSTED when the range is full, INVALID_ARGUMENT for a
   * bad policy, INVALID_STATE when the VM already has a network.
   * `preferSubnet`: take this subnet (and so the same host address) when it
   * is free, e.g. for a VM resumed from disk; otherwise the lowest free one.
   */
  async create(vmId: string, policy?: EgressPolicy, options: { preferSubnet?: string } = {}): Promise<VmNetwork> {
    const resolved = resolveEgressPolicy(policy);
    await this.ensureHost();
    const names = vmObjectNames(vmId, this.netnsPrefix);
    const lease = this.options.leases.allocate(vmId, names.netns, (taken) => {
      const preferred = options.preferSubnet ? this.allocator.slotOf(options.preferSubnet) : null;
      return preferred && !taken.has(preferred.subnet) ? preferred : this.allocator.firstFree(taken);
    });
    if (!lease) {
      const range = formatCidr(this.allocator.range);
      throw new NetworkExhaustedError(
        `no free address for VM ${vmId}: all ${this.allocator.capacity} subnets (/${this.allocator.prefixPerVm}) of network.range ${range} are leased; destroy unused VMs, or enlarge network.range (a shorter prefix) or raise network.prefix_per_vm`,
        { details: { vm_id: vmId, range, capacity: this.allocator.capacity } },
      );
    }
    // The host veth end is the subnet's first address (see ipam.ts SubnetSlot).
    const slot = { hostVethIp: formatIpv4(parseCidr(lease.subnet)!.network + 1), hostAddress: lease.hostAddress };
    const net: VmNetwork = {
      vmId,
      netns: names.netns,
      tapName: GUEST_LINK.tapName,
      guestIp: GUEST_LINK.guestIp,
      guestPrefix: GUEST_LINK.guestPrefix,
      gatewayIp: GUEST_LINK.gatewayIp,
      guestMac: GUEST_LINK.guestMac,
      hostAddress: slot.hostAddress,
      hostVeth: names.hostVeth,
      nsVeth: NS_VETH_NAME,
      hostVethIp: slot.hostVethIp,
      subnet: lease.subnet,
      bandwidthMbit: resolved.bandwidthMbit,
    };
    const undo = new CleanupStack();
    undo.push('lease', () => this.options.leases.release(vmId));
    const prefixLen = this.allocator.prefixPerVm;
    const ns = net.netns;
    let step = '';
    try {
      step = 'netns';
      await this.exec.ip(null, ['netns', 'add', ns]);
      undo.push('netns', () => this.deleteNetns(ns));

      step = 'tap';
      const stand = this.options.tapStandIn;
      const tapCreate = stand
        ? ['link', 'add', net.tapName, 'type', 'veth', 'peer', 'name', stand.peerName ?? 'eth0', 'netns', stand.peerNetns(vmId)]
        : ['tuntap', 'add', 'dev', net.tapName, 'mode', 'tap', 'user', '0'];
      await this.exec.ipBatch(ns, [['link', 'set', 'lo', 'up'], tapCreate]);
      // Deleted explicitly: namespace teardown is asynchronous in the kernel, and a stand-in's peer would linger.
      undo.push('tap', () => this.exec.ip(ns, ['link', 'del', net.tapName], true));
      await this.exec.ipBatch(ns, [
        ['addr', 'add', `${net.gatewayIp}/${net.guestPrefix}`, 'dev', net.tapName],
        ['link', 'set', net.tapName, 'up'],
      ]);

      step = 'veth';
      await this.exec.ip(this.hostScope, ['link', 'add', net.hostVeth, 'type', 'veth', 'peer', 'name', net.nsVeth, 'netns', ns]);
      undo.push('veth', () => this.deleteLink(this.hostScope, net.hostVeth));

      step = 'addresses';
      await this.exec.ipBatch(this.hostScope, [
        ['addr', 'add', `${net.hostVethIp}/${prefixLen}`, 'dev', net.hostVeth],
        ['link', 'set', net.hostVeth, 'up'],
      ]);
      await this.exec.ipBatch(ns, [
        ['addr', 'add', `${net.hostAddress}/${prefixLen}`, 'dev', net.nsVeth],
        ['link', 'set', net.nsVeth, 'up'],
        ['route', 'add', 'default', 'via', net.hostVethIp],
      ]);

      step = 'namespace-sysctl';
      await this.exec.sysctl(ns, 'net.ipv4.ip_forward', '1');
      // VMs are IPv4-only; without IPv6 in the namespace nothing can bypass the IPv4 NAT.
      await this.exec.sysctl(ns, 'net.ipv6.conf.all.disable_ipv6', '1', true);

      step = 'namespace-nat';
      await this.exec.nft(ns, renderVmNamespace({ ...net, exposedPorts: this.exposedPorts }));

      step = 'egress-chain';
      undo.push('egress-chain', () => this.removeChain(names));
      await this.exec.nft(this.hostScope, renderVmChain({ chain: names.chain, hostVeth: net.hostVeth, hostAddress: net.hostAddress, policy: resolved }));

      if (resolved.bandwidthMbit !== null) {
        step = 'bandwidth';
        // TAP egress is traffic to the guest (download); the namespace veth's egress is the guest's upload.
        for (const dev of [net.tapName, net.nsVeth]) {
          await this.exec.tc(ns, ['qdisc', 'replace', 'dev', dev, 'root', ...tbfArgs(resolved.bandwidthMbit)]);
        }
      }
      return net;
    } catch (err) {
      const failures = await undo.run();
      const cleanup = failures.length ? `; cleanup also failed for ${failures.map((f) => f.name).join(', ')} (run reconcile)` : '';
      throw new NetworkSetupFailedError(`could not set up the network of VM ${vmId} at step "${step}": ${(err as Error).message}${cleanup}`, {
        cause: err,
        details: { vm_id: vmId, step },
      });
    }
  }

  /**
   * Removes everything of the VM's network (egress chain, veth, TAP,
   * namespace) and then releases its lease. Idempotent; a VM without a
   * network is a no-op. The VMM inside the namespace must have exited.
   * Throws NETWORK_SETUP_FAILED when something cannot be removed; the lease
   * is then kept, so its address is not reused while objects remain.
   */
  async destroy(vmId: string): Promise<void> {
    this.assertAvailable();
    const names = vmObjectNames(vmId, this.netnsPrefix);
    // The lease's namespace wins over the derived name, in case the prefix changed since creation.
    const lease = this.options.leases.get(vmId);
    if (lease) names.netns = lease.netns;
    const problems: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        problems.push(`${what}: ${(err as Error).message}`);
      }
    };
    await attempt('egress chain', () => this.removeChain(names));
    await attempt('veth', () => this.deleteLink(this.hostScope, names.hostVeth));
    await attempt('namespace', async () => {
      if (!(await this.netnsExists(names.netns))) return;
      await this.exec.ip(names.netns, ['link', 'del', GUEST_LINK.tapName], true);
      await this.deleteNetns(names.netns);
    });
    if (problems.length > 0) {
      throw new NetworkSetupFailedError(
        `could not remove the network of VM ${vmId}: ${problems.join('; ')}; its lease is kept until a later destroy or reconcile succeeds`,
        {
          details: { vm_id: vmId },
        },
      );
    }
    this.options.leases.release(vmId);
  }

  /**
   * Removes the networks of VMs not in `liveVmIds`: their leases, and every
   * namespace with this manager's prefix, host veth `tfcv*` and `vm_*` chain
   * that belongs to no live VM (crash leftovers). Returns what it removed.
   */
  reconcile(liveVmIds: ReadonlySet<string> | (() => ReadonlySet<string>)): Promise<ReconcileReport> {
    this.assertAvailable();
    return new Reconciler({
      exec: this.exec,
      hostScope: this.hostScope,
      netnsPrefix: this.netnsPrefix,
      leases: this.options.leases,
      destroy: (id) => this.destroy(id),
      removeChain: (n) => this.removeChain(n),
      deleteLink: (scope, name) => this.deleteLink(scope, name),
      deleteNetns: (name) => this.deleteNetns(name),
    }).run(liveVmIds);
  }

  /**
   * Deletes the host table `inet tfc` (tests, uninstall). Refuses with
   * INVALID_STATE while leases exist: without the table VMs would not be
   * isolated. Turns IPv4 forwarding back off if this manager turned it on
   * (a host that had it on keeps it).
   */
  async removeHost(): Promise<void> {
    const held = this.options.leases.list();
    if (held.length > 0) {
      throw new InvalidStateError(
        `cannot remove host networking: ${held.length} VM network(s) still exist (${held.map((l) => l.vmId).join(', ')}); destroy them first`,
      );
    }
    this.hostReady = null;
    if (await this.hostTableExists()) await this.exec.nftQuery(this.hostScope, ['delete', 'table', 'inet', HOST_TABLE]);
    if (this.forwardingBefore === '0') await this.exec.sysctl(this.hostScope, 'net.ipv4.ip_forward', '0');
    this.forwardingBefore = undefined;
  }

  /** Argv prefix that runs a program inside the VM's namespace (for the VMM driver). */
  spawnPrefix(net: Pick<VmNetwork, 'netns'>): string[] {
    return netnsExecPrefix(net.netns);
  }

  private async hostTableExists(): Promise<boolean> {
    return (await this.exec.nftQuery(this.hostScope, ['list', 'table', 'inet', HOST_TABLE], true)).code === 0;
  }

  private async removeChain(names: { chain: string; hostVeth: string }): Promise<void> {
    if (!(await this.hostTableExists())) return; // no table: nothing of any VM can remain in it
    await this.exec.nft(this.hostScope, renderVmChainRemoval(names));
  }

  private async deleteLink(scope: Scope, name: string): Promise<void> {
    const r = await this.exec.ip(scope, ['link', 'del', name], true);
    if (r.code !== 0 && (await this.exec.ip(scope, ['link', 'show', 'dev', name], true)).code === 0) {
      throw new NetworkSetupFailedError(`ip link del ${name} failed: ${r.stderr.toString().trim()}`);
    }
  }

  private async netnsExists(name: string): Promise<boolean> {
    return (await this.exec.listNetns()).includes(name);
  }

  private async deleteNetns(name: string): Promise<void> {
    const r = await this.exec.ip(null, ['netns', 'del', name], true);
    if (r.code !== 0 && (await this.netnsExists(name))) {
      throw new NetworkSetupFailedError(`ip netns del ${name} failed: ${r.stderr.toString().trim()}`);
    }
  }
}

/** tc tbf arguments: burst sized for ~10 ms at the rate (at least 32 KiB, enough for TSO bursts). */
export function tbfArgs(mbit: number): string[] {
  const burstBytes = Math.max(32 * 1024, Math.ceil((mbit * 1_000_000) / 8 / 100));
  return ['tbf', 'rate', `${mbit}mbit`, 'burst', String(burstBytes), 'latency', '50ms'];
}
