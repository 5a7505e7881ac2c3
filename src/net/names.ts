import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors/index.js';

/**
 * Names of everything the network manager creates, derived from the VM id
 * alone: reconciliation can compute the names of live VMs and remove every
 * other object with the same prefix, with nothing else to remember.
 * Interface names must fit IFNAMSIZ (15 characters plus NUL).
 */

export const IFNAMSIZ_MAX = 15;
/** Default prefix of per-VM network namespaces (`ip netns list`). */
export const DEFAULT_NETNS_PREFIX = 'tfc-';
/** Prefix of host-side veth ends; reconcile removes `tfcv*` links that belong to no live VM. */
export const HOST_VETH_PREFIX = 'tfcv';
/** Name of the namespace end of the veth pair (identical in every VM namespace). */
export const NS_VETH_NAME = 'veth0';
/** Prefix of per-VM egress chains in the host table `inet tfc`. */
export const VM_CHAIN_PREFIX = 'vm_';
const SHORT_ID_HEX = 10;

export interface VmObjectNames {
  netns: string;
  hostVeth: string;
  chain: string;
}

/** 10 hex digits of sha256(vmId): short, stable, collision odds ~2^-40 per pair. */
export function shortId(vmId: string): string {
  return createHash('sha256').update(vmId).digest('hex').slice(0, SHORT_ID_HEX);
}

/** Names of one VM's namespace, host veth end and nft chain. */
export function vmObjectNames(vmId: string, netnsPrefix = DEFAULT_NETNS_PREFIX): VmObjectNames {
  const s = shortId(vmId);
  return { netns: `${netnsPrefix}${s}`, hostVeth: assertIfName(`${HOST_VETH_PREFIX}${s}`), chain: `${VM_CHAIN_PREFIX}${s}` };
}

/** Returns `name` when it is a valid Linux interface name (1-15 chars, no '/', ':' or whitespace); throws INVALID_ARGUMENT otherwise. */
export function assertIfName(name: string): string {
  if (name.length < 1 || name.length > IFNAMSIZ_MAX || /[\s/:]/.test(name) || name === '.' || name === '..') {
    throw new InvalidArgumentError(`"${name}" is not a valid interface name (1-${IFNAMSIZ_MAX} characters, no '/', ':' or spaces)`);
  }
  return name;
}

const NETNS_PREFIX_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

/** Validates a namespace prefix (it becomes part of a file name under /run/netns). */
export function assertNetnsPrefix(prefix: string): string {
  if (!NETNS_PREFIX_PATTERN.test(prefix)) {
    throw new InvalidArgumentError(`netns prefix "${prefix}" must match ${NETNS_PREFIX_PATTERN.source}`);
  }
  return prefix;
}
