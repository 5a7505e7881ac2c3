import { ConfigInvalidError } from '../errors/index.js';

/**
 * Pure IPv4 address math and the subnet allocator behind the IPAM range
 * (config `network.range`, `network.prefix_per_vm`). Addresses are uint32
 * numbers internally; nothing here touches the system or the store.
 */

export interface Cidr {
  /** Network address as an unsigned 32-bit number (host bits zero). */
  network: number;
  prefix: number;
}

/** One VM's slice of the range. */
export interface SubnetSlot {
  /** e.g. "10.200.0.4/30": the key leases are unique on. */
  subnet: string;
  /** First usable address: the host end of the VM's veth (the VM namespace's default gateway). */
  hostVethIp: string;
  /** Second usable address: the VM's unique address as seen from the host (DNATed to the guest). */
  hostAddress: string;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses dotted-quad IPv4; returns null when it is not one. */
export function parseIpv4(text: string): number | null {
  const m = IPV4.exec(text.trim());
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Netmask of a prefix length as uint32 (prefix 0 -> 0). */
export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Parses "a.b.c.d/n" (or a bare address, meaning /32). Returns null when it
 * is not valid IPv4 CIDR or has host bits set ("10.0.0.1/8"): such a value is
 * almost always a typo, so it is refused rather than silently widened.
 */
export function parseCidr(text: string): Cidr | null {
  const [addr, len, ...rest] = text.trim().split('/');
  if (rest.length > 0) return null;
  const ip = parseIpv4(addr);
  if (ip === null) return null;
  const prefix = len === undefined ? 32 : /^\d{1,2}$/.test(len) ? Number(len) : NaN;
  if (!(prefix >= 0 && prefix <= 32)) return null;
  if ((ip & ~prefixMask(prefix)) >>> 0 !== 0) return null;
  return { network: ip, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIpv4(c.network)}/${c.prefix}`;
}

/** True when the two CIDRs share at least one address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const mask = prefixMask(Math.min(a.prefix, b.prefix));
  return (a.network & mask) >>> 0 === (b.network & mask) >>> 0;
}

/** True when `ip` (uint32) lies inside `c`. */
export function cidrContains(c: Cidr, ip: number): boolean {
  return (ip & prefixMask(c.prefix)) >>> 0 === c.network;
}

/**
 * Splits `range` into per-VM subnets of `/prefixPerVm`. Validates the
 * configuration once (throws CONFIG_INVALID naming the key): the range must
 * be valid CIDR, each VM needs at least 4 addresses (prefix <= 30), and the
 * range must not overlap the guest link (172.16.0.0/30), which exists inside
 * every VM namespace.
 */
export class SubnetAllocator {
  readonly range: Cidr;
  readonly prefixPerVm: number;
  /** How many VMs the range holds. */
  readonly capacity: number;

  constructor(rangeCidr: string, prefixPerVm: number, guestLink: Cidr) {
    const range = parseCidr(rangeCidr);
    if (!range) {
      throw new ConfigInvalidError(`network.range "${rangeCidr}" is not an IPv4 CIDR with zero host bits (e.g. "10.200.0.0/16")`);
    }
    if (!Number.isInteger(prefixPerVm) || prefixPerVm < range.prefix || prefixPerVm > 30) {
      throw new ConfigInvalidError(
        `network.prefix_per_vm ${prefixPerVm} must be an integer from ${range.prefix} (the range's own prefix) to 30 (each VM needs 4 addresses)`,
      );
    }
    if (cidrsOverlap(range, guestLink)) {
      throw new ConfigInvalidError(
        `network.range ${rangeCidr} overlaps the guest link ${formatCidr(guestLink)} used inside every VM namespace; choose a range outside it (default 10.200.0.0/16)`,
      );
    }
    this.range = range;
    this.prefixPerVm = prefixPerVm;
    this.capacity = 2 ** (prefixPerVm - range.prefix);
  }

  /** The slot at `index` (0-based); throws RangeError outside [0, capacity). */
  slot(index: number): SubnetSlot {
    if (!Number.isInteger(index) || index < 0 || index >= this.capacity) throw new RangeError(`subnet index ${index} outside 0..${this.capacity - 1}`);
    const network = (this.range.network + index * 2 ** (32 - this.prefixPerVm)) >>> 0;
    return {
      subnet: formatCidr({ network, prefix: this.prefixPerVm }),
      hostVethIp: formatIpv4(network + 1),
      hostAddress: formatIpv4(network + 2),
    };
  }

  /** The slot whose subnet is `subnet` (as formatCidr writes it), or null when the range has no such slot. */
  slotOf(subnet: string): SubnetSlot | null {
    const cidr = parseCidr(subnet);
    if (!cidr || cidr.prefix !== this.prefixPerVm || !cidrContains(this.range, cidr.network)) return null;
    return this.slot((cidr.network - this.range.network) / 2 ** (32 - this.prefixPerVm));
  }

  /** The lowest slot whose subnet is not in `taken`, or null when all are. Lowest-first keeps addresses predictable. */
  firstFree(taken: ReadonlySet<string>): SubnetSlot | null {
    for (let i = 0; i < this.capacity; i++) {
      const s = this.slot(i);
      if (!taken.has(s.subnet)) return s;
    }
    return null;
  }
}
