/**
 * Firecracker's side of a VM's network attachment: the `eth0` interface on
 * the TAP the net module made in the VM's namespace. The TAP name and MAC
 * come in through VmLaunchSpec.network; this file must not import net/ (net
 * stays driver-neutral).
 */
import type { VmNetworkAttachment } from '../driver.js';

/** Body of Firecracker's `PUT /network-interfaces/eth0`; Firecracker must run inside the namespace (jailer `--netns /var/run/netns/NAME`). */
export function firecrackerNetworkInterface(net: Pick<VmNetworkAttachment, 'tapName' | 'guestMac'>): {
  iface_id: string;
  host_dev_name: string;
  guest_mac: string;
} {
  return { iface_id: 'eth0', host_dev_name: net.tapName, guest_mac: net.guestMac };
}
