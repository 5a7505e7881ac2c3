/**
 * Placement and cluster VM ids. Pure functions, no I/O: given the cluster
 * view and a random source, pick the node that should allocate from a pool.
 *
 * Power of two choices: among the nodes with ready VMs for the pool, draw
 * two at random and take the one with more ready VMs (ties: fewer VMs, then
 * the first drawn). This spreads load almost as well as asking every node, with no
 * herd on "the node with the most": many nodes placing at once from the same
 * stale view do not all pick the same node. When no node has a ready VM, any
 * node with room (VMs below its max_vms) that serves the pool is picked the
 * same way, by free room; it cold-starts or waits for a refill.
 *
 * VM ids name their node: `NODE~vm-0123456789ab` (`~` is an unreserved URL
 * character, so ids need no escaping in paths; node names never contain it).
 */
import { InvalidArgumentError } from '../errors/index.js';
import { seededRandom as mulberry32 } from '../random.js';
import { NODE_NAME_PATTERN } from './config.js';
import type { NodeView } from './view.js';

/** A local VM id as made by src/vm (vm-service.ts): `vm-` and 12 hex digits. */
export const LOCAL_VM_ID_PATTERN = /^vm-[0-9a-f]{12}$/;
/** A VM id in cluster mode: `NODE~vm-…`, or a bare local id (a VM of the node that answers). */
export const CLUSTER_VM_ID_PATTERN = /^(?:([a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?)~)?(vm-[0-9a-f]{12})$/;
export const NODE_SEPARATOR = '~';

export interface ParsedVmId {
  /** The node that holds the VM, or null for a bare local id. */
  node: string | null;
  /** The id the node itself knows the VM by. */
  localId: string;
}

/** `NODE~LOCAL`. Throws INVALID_ARGUMENT for a bad node name or local id (a programming error upstream). */
export function formatVmId(node: string, localId: string): string {
  if (!NODE_NAME_PATTERN.test(node)) throw new InvalidArgumentError(`invalid node name ${JSON.stringify(node)}: must match ${NODE_NAME_PATTERN.source}`);
  if (!LOCAL_VM_ID_PATTERN.test(localId))
    throw new InvalidArgumentError(`invalid local VM id ${JSON.stringify(localId)}: must match ${LOCAL_VM_ID_PATTERN.source}`);
  return `${node}${NODE_SEPARATOR}${localId}`;
}

/** Splits a VM id. Throws INVALID_ARGUMENT naming the expected form when `id` is neither `NODE~vm-…` nor `vm-…`. */
export function parseVmId(id: string): ParsedVmId {
  const m = CLUSTER_VM_ID_PATTERN.exec(id);
  if (!m) {
    throw new InvalidArgumentError(
      `invalid VM id ${JSON.stringify(id)}: expected "NODE~vm-" plus 12 hex digits (e.g. "node-1~vm-0123456789ab") or a local "vm-0123456789ab"`,
      {
        details: { id },
      },
    );
  }
  return { node: m[1] ?? null, localId: m[2] };
}

export type Random = () => number;

/** A seeded random source in [0, 1) (mulberry32, shared with the pools' strategies): deterministic placement in tests and simulations. */
export const seededRandom: (seed: number) => Random = mulberry32;

export interface PlacementChoice {
  node: string;
  /** `ready`: the node has ready VMs for the pool; `capacity`: none has, this one has room. */
  reason: 'ready' | 'capacity';
  /** The chosen node's score (ready VMs, or free VM slots). */
  score: number;
}

export interface PlaceOptions {
  /** Nodes not to pick (e.g. ones that just failed this request). */
  exclude?: ReadonlySet<string>;
}

function freeSlots(n: NodeView): number {
  return Math.max(0, n.capacity.max_vms - n.vms);
}

/** The better of two random distinct candidates (or the only one). `random` is called at most twice. */
function twoChoices(candidates: NodeView[], score: (n: NodeView) => number, random: Random): NodeView {
  if (candidates.length === 1) return candidates[0];
  const pick = (k: number) => Math.min(k - 1, Math.floor(random() * k));
  const i = pick(candidates.length);
  // The second draw skips the first candidate, so the two are distinct.
  let j = pick(candidates.length - 1);
  if (j >= i) j++;
  const [a, b] = [candidates[i], candidates[j]];
  const [sa, sb] = [score(a), score(b)];
  // Ties go to the first drawn (itself random), so equal nodes share the load.
  const aBetter = sa !== sb ? sa > sb : a.vms !== b.vms ? a.vms < b.vms : true;
  return aBetter ? a : b;
}

/**
 * Chooses the node to allocate from `pool`, or null when no node serves the
 * pool with a ready VM or room for one (the caller answers POOL_EXHAUSTED).
 * Deterministic for a given view and random source.
 */
export function placeVm(pool: string, nodes: readonly NodeView[], random: Random, options: PlaceOptions = {}): PlacementChoice | null {
  // Sorted, so the same view gives the same choice whatever order it came in.
  const live = nodes.filter((n) => !options.exclude?.has(n.name)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const withReady = live.filter((n) => (n.pools[pool]?.ready ?? 0) > 0);
  if (withReady.length > 0) {
    const ready = (n: NodeView) => n.pools[pool]?.ready ?? 0;
    const node = twoChoices(withReady, ready, random);
    return { node: node.name, reason: 'ready', score: ready(node) };
  }
  const withRoom = live.filter((n) => n.pools[pool] !== undefined && freeSlots(n) > 0);
  if (withRoom.length === 0) return null;
  const node = twoChoices(withRoom, freeSlots, random);
  return { node: node.name, reason: 'capacity', score: freeSlots(node) };
}
