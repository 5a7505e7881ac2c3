/**
 * The local view of the cluster: live nodes and their published pool counts,
 * built from etcd key-value pairs under the key prefix. Pure (no I/O): the
 * membership applies what its watch delivers and gets back the events it
 * emits. Keys it understands (PREFIX is `cluster.key_prefix`, e.g. `/tfc/`):
 *
 *   PREFIX nodes/NODE         NodeInfo JSON, attached to NODE's lease
 *   PREFIX pools/NODE/POOL    PoolCounts JSON, same lease
 *   PREFIX pools/NODE/_node   NodeLoad JSON ({vms, list, truncated}: the VM
 *                             count and the ids of at most MAX_PUBLISHED_VMS
 *                             VMs with their pool and state), same lease (pool
 *                             names never start with "_", so it cannot collide)
 *
 * Anything else under the prefix, and values that do not parse, are ignored
 * (counted in `ignored`), so a newer tfc may add keys without breaking older
 * nodes.
 */
import { NODE_NAME_PATTERN } from './config.js';

export interface NodeCapacity {
  vcpus: number;
  memory_mib: number;
  max_vms: number;
}

/** The value of `PREFIX nodes/NODE`. */
export interface NodeInfo {
  name: string;
  /** URL other nodes forward calls to (`cluster.advertise_url`). */
  url: string;
  version: string;
  /** ISO time the node's daemon started (changes when it restarts: a rejoin after a crash shows a new value). */
  started_at: string;
  capacity: NodeCapacity;
}

/** The value of `PREFIX pools/NODE/POOL`. */
export interface PoolCounts {
  ready: number;
  allocated: number;
  target: number;
}

/** One VM of a node as it publishes it: its bare (local) id, its pool (null outside pools) and whether it is allocated. */
export interface PublishedVm {
  id: string;
  pool: string | null;
  state: 'ready' | 'allocated';
}

/** The value of `PREFIX pools/NODE/_node`. */
export interface NodeLoad {
  vms: number;
  /** At most MAX_PUBLISHED_VMS of the node's VMs, sorted by id. */
  list: PublishedVm[];
  /** The list does not name every VM (more than MAX_PUBLISHED_VMS, an older tfc that publishes the count only, or forgotten). */
  truncated: boolean;
}

export const NODE_LOAD_KEY = '_node';

/** How many VM ids a node publishes (above that: the count, and `truncated`). Keeps one node's value near 64 KiB. */
export const MAX_PUBLISHED_VMS = 1024;

export interface NodeView extends NodeInfo {
  pools: Record<string, PoolCounts>;
  /** VMs on the node as last published; 0 until it publishes. */
  vms: number;
  /** Its VMs as last published (at most MAX_PUBLISHED_VMS). */
  vm_list: PublishedVm[];
  vm_list_truncated: boolean;
}

/** A node whose key was deleted: when, and which VMs it last published (they are lost). */
export interface Departure {
  node: NodeInfo;
  at: string;
  vms: number;
  /** Its last published VMs; emptied (and `truncated`) once more than MAX_DEPARTED_VM_LISTS newer departures keep theirs. */
  list: PublishedVm[];
  truncated: boolean;
}

/**
 * Why a VM of a departed node is lost: the text of its `lost` entry in
 * GET /v1/cluster and of the NODE_LOST error for calls to it.
 */
export function lostReason(node: string, at: string): string {
  return `node ${node}'s etcd lease expired (or was revoked) at ${at}; the VM's host is unreachable or dead, so the VM is lost`;
}

export type ViewEvent = { type: 'joined'; node: NodeInfo } | { type: 'left'; node: NodeInfo; at: string } | { type: 'updated'; node: NodeInfo };

/** How many departed nodes are remembered (to answer NODE_LOST rather than NODE_UNKNOWN). */
export const MAX_DEPARTED = 1024;
/** How many of the most recent departures keep their list of lost VMs (each up to MAX_PUBLISHED_VMS entries); older ones keep the count only. */
export const MAX_DEPARTED_VM_LISTS = 100;

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1_000_000;

export function parseNodeInfo(name: string, text: string): NodeInfo | null {
  try {
    const v = JSON.parse(text) as Partial<NodeInfo>;
    const c = v.capacity;
    if (v.name !== name || typeof v.url !== 'string' || typeof v.version !== 'string' || typeof v.started_at !== 'string') return null;
    if (!c || !isCount(c.vcpus) || !isCount(c.memory_mib) || !isCount(c.max_vms)) return null;
    return { name, url: v.url, version: v.version, started_at: v.started_at, capacity: { vcpus: c.vcpus, memory_mib: c.memory_mib, max_vms: c.max_vms } };
  } catch {
    return null;
  }
}

function parseCounts(text: string): PoolCounts | null {
  try {
    const v = JSON.parse(text) as Partial<PoolCounts>;
    return isCount(v.ready) && isCount(v.allocated) && isCount(v.target) ? { ready: v.ready, allocated: v.allocated, target: v.target } : null;
  } catch {
    return null;
  }
}

const VM_ID = /^vm-[0-9a-f]{12}$/;

function parseVm(v: unknown): PublishedVm | null {
  if (v === null || typeof v !== 'object') return null;
  const { id, pool, state } = v as Record<string, unknown>;
  if (typeof id !== 'string' || !VM_ID.test(id)) return null;
  if (pool !== null && (typeof pool !== 'string' || pool.length === 0 || pool.length > 128)) return null;
  if (state !== 'ready' && state !== 'allocated') return null;
  return { id, pool, state };
}

/** A NodeLoad; entries of the list that do not parse are dropped (and the list marked truncated). `{vms}` alone (older tfc) is a truncated empty list. */
export function parseLoad(text: string): NodeLoad | null {
  try {
    const v = JSON.parse(text) as { vms?: unknown; list?: unknown; truncated?: unknown };
    if (!isCount(v.vms)) return null;
    const given = Array.isArray(v.list) ? v.list.slice(0, MAX_PUBLISHED_VMS) : [];
    const list = given.map(parseVm).filter((x): x is PublishedVm => x !== null);
    const complete = Array.isArray(v.list) && v.truncated === false && list.length === v.list.length && list.length === v.vms;
    return { vms: v.vms, list, truncated: !complete };
  } catch {
    return null;
  }
}

type Key = { kind: 'node'; node: string } | { kind: 'pool'; node: string; pool: string } | { kind: 'load'; node: string };

export class ClusterView {
  private readonly infos = new Map<string, NodeInfo>();
  private readonly pools = new Map<string, Map<string, PoolCounts>>();
  private readonly loads = new Map<string, NodeLoad>();
  private readonly departed = new Map<string, Departure>();
  /** Keys or values under the prefix that were not understood. */
  ignored = 0;

  constructor(
    private readonly prefix: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private parseKey(key: string): Key | null {
    if (!key.startsWith(this.prefix)) return null;
    const parts = key.slice(this.prefix.length).split('/');
    if (parts[0] === 'nodes' && parts.length === 2 && NODE_NAME_PATTERN.test(parts[1])) return { kind: 'node', node: parts[1] };
    if (parts[0] === 'pools' && parts.length === 3 && NODE_NAME_PATTERN.test(parts[1]) && parts[2] !== '') {
      return parts[2] === NODE_LOAD_KEY ? { kind: 'load', node: parts[1] } : { kind: 'pool', node: parts[1], pool: parts[2] };
    }
    return null;
  }

  /** Applies a put; returns the events it causes (none for pool counts). */
  put(key: string, value: string): ViewEvent[] {
    const k = this.parseKey(key);
    if (k === null) {
      this.ignored++;
      return [];
    }
    if (k.kind === 'pool') {
      const counts = parseCounts(value);
      if (counts === null) this.ignored++;
      else {
        const map = this.pools.get(k.node) ?? new Map<string, PoolCounts>();
        map.set(k.pool, counts);
        this.pools.set(k.node, map);
      }
      return [];
    }
    if (k.kind === 'load') {
      const load = parseLoad(value);
      if (load === null) this.ignored++;
      else this.loads.set(k.node, load);
      return [];
    }
    const info = parseNodeInfo(k.node, value);
    if (info === null) {
      this.ignored++;
      return [];
    }
    const had = this.infos.has(k.node);
    this.infos.set(k.node, info);
    this.departed.delete(k.node);
    return [{ type: had ? 'updated' : 'joined', node: info }];
  }

  /** Applies a delete (lease expiry, revoke, or a manual delete). */
  delete(key: string): ViewEvent[] {
    const k = this.parseKey(key);
    if (k === null) return [];
    if (k.kind === 'pool') {
      this.pools.get(k.node)?.delete(k.pool);
      return [];
    }
    if (k.kind === 'load') {
      // A live node never deletes its load key: this is its lease going, and
      // its node key may be deleted after it (in the same revision). Keep the
      // last list for the departure; the node key's delete drops it.
      if (!this.infos.has(k.node)) this.loads.delete(k.node);
      return [];
    }
    const info = this.infos.get(k.node);
    if (!info) return [];
    const load = this.loads.get(k.node) ?? { vms: 0, list: [], truncated: false };
    this.infos.delete(k.node);
    this.pools.delete(k.node);
    this.loads.delete(k.node);
    const at = this.now().toISOString();
    this.departed.delete(k.node);
    this.departed.set(k.node, { node: info, at, vms: load.vms, list: load.list, truncated: load.truncated });
    // Bounded: forget the oldest departures first (Map keeps insertion order),
    // and keep the lists of lost VMs of the most recent ones only.
    while (this.departed.size > MAX_DEPARTED) this.departed.delete(this.departed.keys().next().value as string);
    let lists = 0;
    for (const d of [...this.departed.values()].reverse()) {
      if (d.list.length === 0) continue;
      if (++lists > MAX_DEPARTED_VM_LISTS) {
        d.list = [];
        d.truncated = true;
      }
    }
    return [{ type: 'left', node: info, at }];
  }

  /**
   * Replaces the whole view with a full listing (after a reload of the
   * prefix) and returns the joins and departures that differ from before.
   */
  reset(kvs: Iterable<{ key: string; value: string }>): ViewEvent[] {
    const before = new Map(this.infos);
    const beforeLoads = new Map(this.loads);
    this.infos.clear();
    this.pools.clear();
    this.loads.clear();
    const events: ViewEvent[] = [];
    for (const { key, value } of kvs) {
      for (const e of this.put(key, value)) if (!before.has(e.node.name)) events.push({ type: 'joined', node: e.node });
    }
    for (const [name, info] of before) {
      if (this.infos.has(name)) continue;
      // Record the departure through delete() so the bookkeeping is in one place.
      this.infos.set(name, info);
      const load = beforeLoads.get(name);
      if (load) this.loads.set(name, load);
      events.push(...this.delete(`${this.prefix}nodes/${name}`));
    }
    return events;
  }

  has(name: string): boolean {
    return this.infos.has(name);
  }

  node(name: string): NodeView | undefined {
    const info = this.infos.get(name);
    if (!info) return undefined;
    const load = this.loads.get(name);
    return {
      ...info,
      pools: Object.fromEntries(this.pools.get(name) ?? []),
      vms: load?.vms ?? 0,
      vm_list: load?.list ?? [],
      vm_list_truncated: load?.truncated ?? false,
    };
  }

  /** Live nodes, sorted by name. */
  nodes(): NodeView[] {
    return [...this.infos.keys()].sort().map((n) => this.node(n)!);
  }

  /** When `name` left (its key was deleted), if it is remembered and has not come back. */
  departure(name: string): Departure | undefined {
    return this.departed.get(name);
  }

  /** Remembered departed nodes that have not come back, oldest departure first. */
  departures(): Departure[] {
    return [...this.departed.values()];
  }
}
