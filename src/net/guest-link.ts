import type { Cidr } from './ipam.js';

/**
 * The guest side of every VM's network, identical in every VM namespace so
 * that clones of one snapshot (which all wake up with the same address and
 * MAC) need no reconfiguration: NAT in the namespace maps the guest to the
 * VM's unique host address.
 */
export const GUEST_LINK = {
  tapName: 'tap0',
  guestIp: '172.16.0.2',
  guestPrefix: 30,
  gatewayIp: '172.16.0.1',
  /** 06:00 (locally administered, unicast) followed by the guest IP bytes, Firecracker's convention. */
  guestMac: '06:00:ac:10:00:02',
  /** Name the guest kernel gives the (only) virtio-net device. */
  guestInterface: 'eth0',
} as const;

export const GUEST_LINK_CIDR: Cidr = { network: ((172 << 24) | (16 << 16)) >>> 0, prefix: 30 };

/**
 * Kernel argument the guest init (src/guest/init-script.ts) reads to bring
 * up eth0: `tfc.net=IP/PREFIX,GATEWAY`. The same for every VM, so it is part
 * of the golden snapshot's boot and clones need nothing new.
 */
export function guestKernelNetArg(): string {
  return `tfc.net=${GUEST_LINK.guestIp}/${GUEST_LINK.guestPrefix},${GUEST_LINK.gatewayIp}`;
}
