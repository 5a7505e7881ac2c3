/**
 * QEMU's side of a VM's network attachment: the argv that plugs the guest's
 * virtio-net device into the TAP the net module made in the VM's namespace.
 * The TAP name, MAC and namespace come in through VmLaunchSpec.network; this
 * file must not import net/ (net stays driver-neutral).
 */
import type { VmNetworkAttachment } from '../driver.js';

/** QEMU microvm (virtio-mmio) arguments attaching the guest to the namespace's TAP; the VMM must run inside the namespace. */
export function qemuNetworkArgs(net: Pick<VmNetworkAttachment, 'tapName' | 'guestMac'>): string[] {
  return ['-netdev', `tap,id=net0,ifname=${net.tapName},script=no,downscript=no`, '-device', `virtio-net-device,netdev=net0,mac=${net.guestMac}`];
}
