/**
 * Firecracker-only additions to a VmLaunchSpec: a `firecracker` property
 * that the shared interface (src/vmm/driver.ts) does not declare, read back
 * through a type guard. Everything here is optional; a plain VmLaunchSpec
 * boots with vsock, entropy, logger and metrics and nothing else.
 */
import { InvalidArgumentError } from '../../errors/index.js';
import { firecrackerNetworkInterface } from './network-interface.js';
import type { VmLaunchSpec } from '../driver.js';
import type * as Api from './api.gen.js';

/** Guest agent vsock port when the kernel command line has no `tfc.agent_port=N` (src/agent, docs/agent-protocol.md). */
export const DEFAULT_AGENT_PORT = 1024;
/** Guest CID of the vsock device: 3 is the first CID a guest may have (0-2 are reserved). */
export const DEFAULT_GUEST_CID = 3;

export interface FirecrackerLaunchOptions {
  /** Fields of PUT /machine-config besides vcpu_count and mem_size_mib (which always come from the spec). */
  machine?: Partial<Omit<Api.MachineConfiguration, 'vcpu_count' | 'mem_size_mib'>>;
  /** Block devices (PUT /drives/{id}); `path_on_host` is a host path (linked into the chroot when jailed). */
  drives?: Api.Drive[];
  /** Network interfaces (PUT /network-interfaces/{id}); `host_dev_name` is a TAP in Firecracker's network namespace. */
  networkInterfaces?: Api.NetworkInterface[];
  /** MMDS: its config (needs one of `networkInterfaces`) and the data store's initial contents. */
  mmds?: { config: Api.MmdsConfig; data?: Api.MmdsContentsObject };
  /** Entropy device body (rate limiter); default `{}`; `false` leaves the VM without one. */
  entropy?: Api.EntropyDevice | false;
  /** Guest CID of the vsock device; default 3. */
  vsockGuestCid?: number;
  /**
   * Network namespace Firecracker runs in: a path (`/var/run/netns/NAME`) or
   * a name under /var/run/netns. Jailed: the jailer's `--netns`; otherwise
   * the process is started through `ip netns exec NAME`. Overrides
   * `vmm.firecracker.jailer.netns`.
   */
  netns?: string;
  /** Restore only: TAP device renames for the clone (snapshot/load `network_overrides`). */
  networkOverrides?: Api.NetworkOverride[];
}

export interface FirecrackerLaunchSpec extends VmLaunchSpec {
  firecracker?: FirecrackerLaunchOptions;
}

const ARRAY_FIELDS = ['drives', 'networkInterfaces', 'networkOverrides'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** True when `spec` carries a `firecracker` property (whatever its shape; `firecrackerOptionsOf` checks it). */
export function hasFirecrackerOptions(spec: VmLaunchSpec): spec is FirecrackerLaunchSpec & { firecracker: FirecrackerLaunchOptions } {
  return (spec as FirecrackerLaunchSpec).firecracker !== undefined;
}

/**
 * The spec's Firecracker options, `{}` when it has none. Checks the shape
 * only (objects and arrays where expected); the values are Firecracker's to
 * judge, and its refusals come back as FirecrackerApiError. Throws
 * InvalidArgumentError on a malformed shape.
 */
export function firecrackerOptionsOf(spec: VmLaunchSpec): FirecrackerLaunchOptions {
  if (!hasFirecrackerOptions(spec)) return {};
  const o: unknown = spec.firecracker;
  if (!isObject(o)) throw new InvalidArgumentError('spec.firecracker must be an object of Firecracker launch options');
  for (const field of ARRAY_FIELDS) {
    if (o[field] !== undefined && !Array.isArray(o[field])) throw new InvalidArgumentError(`spec.firecracker.${field} must be an array`);
  }
  if (o.machine !== undefined && !isObject(o.machine)) throw new InvalidArgumentError('spec.firecracker.machine must be an object');
  if (o.mmds !== undefined && !(isObject(o.mmds) && isObject(o.mmds.config))) {
    throw new InvalidArgumentError('spec.firecracker.mmds must be { config: {...}, data?: {...} }');
  }
  if (o.entropy !== undefined && o.entropy !== false && !isObject(o.entropy)) {
    throw new InvalidArgumentError('spec.firecracker.entropy must be an entropy device object or false');
  }
  if (o.netns !== undefined && (typeof o.netns !== 'string' || o.netns === '')) {
    throw new InvalidArgumentError('spec.firecracker.netns must be a non-empty namespace name or path');
  }
  return o as FirecrackerLaunchOptions;
}

/**
 * The options a VM actually gets: `spec.firecracker` merged with the
 * driver-independent `spec.network` (the net module's namespace and TAP),
 * which adds the `eth0` interface on the namespace's TAP and runs
 * Firecracker in that namespace. An explicit `networkInterfaces` entry for
 * `eth0` or an explicit `netns` wins. Throws as firecrackerOptionsOf.
 */
export function effectiveOptions(spec: VmLaunchSpec): FirecrackerLaunchOptions {
  const options = withSpecDrives(firecrackerOptionsOf(spec), spec);
  if (!spec.network) return options;
  const eth0 = firecrackerNetworkInterface(spec.network);
  const own = options.networkInterfaces ?? [];
  return {
    ...options,
    networkInterfaces: own.some((i) => i.iface_id === eth0.iface_id) ? own : [eth0, ...own],
    netns: options.netns ?? spec.network.netns,
  };
}

/**
 * The spec's driver-independent disks (VmLaunchSpec.drives) as Firecracker
 * drives, before any of the options' own (an options drive with the same
 * id wins). Neither is the root device: the initramfs is the root, and
 * stage 1 of init mounts the disks (docs/disks.md). The scratch disk is
 * `Writeback` so the guest's flushes reach the host file (a snapshot
 * copies it after the guest's `sync`); Firecracker's default, `Unsafe`,
 * ignores them.
 */
export function specDrives(spec: Pick<VmLaunchSpec, 'drives'>): Api.Drive[] {
  return (spec.drives ?? []).map((d) => ({
    drive_id: d.id,
    path_on_host: d.path,
    is_root_device: false,
    is_read_only: d.readOnly,
    ...(d.readOnly ? {} : { cache_type: 'Writeback' as const }),
  }));
}

function withSpecDrives(options: FirecrackerLaunchOptions, spec: VmLaunchSpec): FirecrackerLaunchOptions {
  if (!spec.drives?.length) return options;
  const own = options.drives ?? [];
  return { ...options, drives: [...specDrives(spec).filter((d) => !own.some((o) => o.drive_id === d.drive_id)), ...own] };
}

/** The guest agent's vsock port: `tfc.agent_port=N` of the kernel command line (the guest reads the same), else 1024. */
export function agentPortOf(kernelArgs: string): number {
  let port = DEFAULT_AGENT_PORT;
  for (const arg of kernelArgs.split(/\s+/)) {
    const m = /^tfc\.agent_port=(\d{1,10})$/.exec(arg);
    if (m && Number(m[1]) > 0 && Number(m[1]) <= 0xffff_ffff) port = Number(m[1]); // the kernel keeps the last one
  }
  return port;
}

/** `/var/run/netns/NAME` for a bare name; a path is kept. */
export function netnsPath(netns: string): string {
  return netns.includes('/') ? netns : `/var/run/netns/${netns}`;
}
