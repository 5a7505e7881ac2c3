/**
 * The cluster gateway of a node: what the API asks in cluster mode. It
 * decides where a request goes (this node, or another node by its advertised
 * URL), forwards requests over plain node:http with the response piped back
 * as it arrives (SSE, process output and file transfers included), places
 * allocations (power of two choices over the membership view), accepts
 * calls from other nodes (the cluster token plus `X-Tfc-Forwarded-By`), and
 * names this node's VMs in API answers (`NODE~vm-…`).
 *
 * It must not import the HTTP framework or etcd: the API hands it raw Node
 * requests, the daemon hands it the membership. docs/cluster.md#forwarding.
 */
import { timingSafeEqual } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import {
  ClusterUnavailableError,
  NodeUnknownError,
  NodeUnreachableError,
  PayloadTooLargeError,
  PoolExhaustedError,
  TfcError,
  statusOf,
  type ErrorCode,
} from '../errors/index.js';
import type { Membership } from './membership.js';
import { CLUSTER_VM_ID_PATTERN, formatVmId, NODE_SEPARATOR, placeVm, type Random } from './placement.js';
import { lostReason, type NodeCapacity, type NodeInfo, type NodeView, type PoolCounts } from './view.js';

/** Set on every forwarded request: the node that forwarded it. A forwarded request is never forwarded again. */
export const FORWARDED_BY_HEADER = 'x-tfc-forwarded-by';
/** Set on a forwarded allocation: the node placement chose; it allocates locally and does not place again. */
export const PLACED_HEADER = 'x-tfc-placed';
/** Answers relayed from another node name it (diagnostics). */
export const SERVED_BY_HEADER = 'x-tfc-served-by';
/** The largest allocation body read for a retry elsewhere (allocation bodies are small JSON). */
const MAX_ALLOCATE_BODY = 64 * 1024;
/** The largest error answer read to decide whether to place elsewhere. */
const MAX_ERROR_BODY = 64 * 1024;
/**
 * A node chosen for its ready VMs gets this long to hand one out (it waits
 * in line no longer): when its ready VMs went to others since it published
 * its counts, the allocation is placed once more elsewhere instead of
 * waiting for a refill there.
 */
const READY_WAIT_MS = 1000;
/**
 * A node chosen for room (no node had a ready VM) waits this long for its
 * refill. Its published VM count may be stale too: when it is full after
 * all, the allocation goes on to the others, and while every node is full
 * the gateway keeps placing until the client's `timeout_ms`.
 */
const ROOM_WAIT_MS = 5000;
/** While no node has a ready VM or room for the pool, placement is tried again this often. */
const PLACE_RETRY_MS = 250;
/** How long an allocation without `timeout_ms` waits for a ready VM somewhere in the cluster. */
const DEFAULT_PLACE_WAIT_MS = 60_000;

/** What the gateway needs of a `Membership` (a structural subset; tests pass fakes). */
export type MembershipLike = Pick<Membership, 'name' | 'nodes' | 'resolve' | 'requireHealthy' | 'healthy' | 'liveNodes' | 'info'> & {
  readonly view: Pick<Membership['view'], 'departures' | 'has'>;
};

export interface GatewayOptions {
  /** The shared node-to-node token (`cluster.token`). */
  token: string;
  /** Bound on connecting to another node (`cluster.call_timeout_ms`). */
  connectTimeoutMs: number;
  random?: Random;
  /** This node's own pool counts now (exact, unlike the published ones placement sees for the others). */
  localPools?: () => Record<string, PoolCounts>;
  /** This node's VM count now (placement's room check for this node). */
  localVms?: () => number;
}

/** Where a request goes. */
export type RoutePlan =
  | { kind: 'local' }
  | { kind: 'forward'; node: NodeInfo }
  /** `first`: the node placement chose, or null while no node has a ready VM or room (the gateway waits for one). */
  | { kind: 'allocate'; pool: string; first: { node: NodeInfo; reason: 'ready' | 'capacity' } | null };

/** A VM of a live node in `GET /v1/cluster` (`id` names its node: NODE~vm-…). */
export interface ClusterVm {
  id: string;
  pool: string | null;
  state: 'ready' | 'allocated';
}

/** A VM of a departed node in `GET /v1/cluster`. */
export interface LostVm {
  id: string;
  pool: string | null;
  state: 'lost';
  reason: string;
}

/** `GET /v1/cluster`. */
export interface ClusterDescription {
  node: string;
  healthy: boolean;
  nodes: Array<{
    name: string;
    url: string;
    version: string;
    started_at: string;
    capacity: NodeCapacity;
    vms: number;
    pools: Record<string, PoolCounts>;
    /** Its VMs as last published (at most MAX_PUBLISHED_VMS); `vm_list_truncated` when that does not name all `vms`. */
    vm_list: ClusterVm[];
    vm_list_truncated: boolean;
  }>;
  /** Nodes whose lease expired (or was revoked) and that have not come back: their VMs are lost. */
  departed: Array<{ name: string; url: string; left_at: string; vms: number; state: 'lost'; reason: string; vm_list: LostVm[]; vm_list_truncated: boolean }>;
}

/** The face the API sees (src/api/deps.ts). */
export interface ClusterApi {
  readonly node: string;
  rewriteUrl(url: string): string;
  isNodeCall(headers: IncomingHttpHeaders): boolean;
  plan(method: string, url: string, headers: IncomingHttpHeaders): RoutePlan;
  forward(req: IncomingMessage, res: ServerResponse, plan: Exclude<RoutePlan, { kind: 'local' }>): void;
  nameIds(payload: string, url: string): string;
  describe(fresh: boolean): Promise<ClusterDescription>;
}

/** Answers whose VM ids name this node (ids there are used with /v1/vms/{id}). */
const NAMED_PATHS = /^\/v1\/(?:vms|pools)(?:[/?#]|$)/;
const VM_PATH = /^\/v1\/vms\/([^/?#]+)(?=[/?#]|$)/;
const ALLOCATE_PATH = /^\/v1\/pools\/([^/?#]+)\/allocate(?:[?#]|$)/;
// Hop-by-hop headers (RFC 9110 7.6.1) and the ones this gateway sets itself.
const DROPPED_REQUEST_HEADERS = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect', 'authorization']);
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'trailer', 'upgrade']);

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Writes the error envelope on a raw response (after the API handed it over), or drops the connection when an answer is under way. */
function sendError(res: ServerResponse, err: unknown): void {
  const e = err instanceof TfcError ? err : new NodeUnreachableError(`forwarding failed: ${(err as Error).message}`, { cause: err });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } });
  res.writeHead(statusOf(e.code as ErrorCode), { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export class ClusterGateway implements ClusterApi {
  private readonly httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 16 });
  private readonly httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 16 });
  private readonly random: Random;
  private readonly selfPrefix: string;
  /** Requests forwarded / allocations placed on another node (diagnostics). */
  readonly stats = { forwarded: 0, placedRemote: 0, placedLocal: 0, retries: 0 };

  constructor(
    private readonly membership: MembershipLike,
    private readonly options: GatewayOptions,
  ) {
    this.random = options.random ?? Math.random;
    this.selfPrefix = `/v1/vms/${membership.name}${NODE_SEPARATOR}`;
  }

  get node(): string {
    return this.membership.name;
  }

  /** `/v1/vms/SELF~vm-…/x` -> `/v1/vms/vm-…/x`: this node's own VMs are served by the ordinary routes. */
  rewriteUrl(url: string): string {
    return url.startsWith(this.selfPrefix) ? `/v1/vms/${url.slice(this.selfPrefix.length)}` : url;
  }

  /** True for a call from another node of the cluster: the cluster token, and `X-Tfc-Forwarded-By` naming a live node. */
  isNodeCall(headers: IncomingHttpHeaders): boolean {
    const by = header(headers, FORWARDED_BY_HEADER);
    const given = /^Bearer\s+(\S+)$/i.exec(header(headers, 'authorization') ?? '')?.[1];
    if (!by || !given) return false;
    return sameSecret(given, this.options.token) && (this.membership.view.has(by) || by === this.membership.name);
  }

  /**
   * Where `method url` goes. Throws NODE_LOST (the VM's node left), NODE_UNKNOWN
   * (never seen, or a forwarded call for a VM that is not this node's) and
   * CLUSTER_UNAVAILABLE (an allocation while this node has no live lease).
   */
  plan(method: string, url: string, headers: IncomingHttpHeaders): RoutePlan {
    const forwardedBy = header(headers, FORWARDED_BY_HEADER);
    const vm = VM_PATH.exec(url);
    if (vm) {
      const m = CLUSTER_VM_ID_PATTERN.exec(decodeURIComponent(vm[1]));
      // A malformed id or a local one: the route answers (validation or VM_NOT_FOUND).
      if (!m || m[1] === undefined || m[1] === this.membership.name) return { kind: 'local' };
      if (forwardedBy !== undefined) {
        throw new NodeUnknownError(
          `node ${forwardedBy} forwarded a call for ${m[0]} to ${this.membership.name}, which does not hold it; the nodes disagree about the cluster, retry`,
          {
            details: { node: m[1], forwarded_by: forwardedBy },
          },
        );
      }
      return { kind: 'forward', node: this.membership.resolve(m[1]) };
    }
    const alloc = method === 'POST' ? ALLOCATE_PATH.exec(url) : null;
    if (alloc && forwardedBy === undefined && header(headers, PLACED_HEADER) === undefined) {
      this.membership.requireHealthy('place a VM');
      const pool = decodeURIComponent(alloc[1]);
      const choice = placeVm(pool, this.placementView(), this.random);
      if (choice !== null && choice.node === this.membership.name) {
        this.stats.placedLocal++;
        return { kind: 'local' };
      }
      if (choice !== null) return { kind: 'allocate', pool, first: { node: this.membership.resolve(choice.node), reason: choice.reason } };
      // No node has a ready VM or room: when some node serves the pool, wait for one cluster-wide; else the local pool answers (POOL_NOT_FOUND).
      if (this.membership.nodes().some((n) => n.pools[pool] !== undefined)) return { kind: 'allocate', pool, first: null };
    }
    return { kind: 'local' };
  }

  /** Forwards a request the API handed over (it owns `res` now). Never throws: failures become the error envelope. */
  forward(req: IncomingMessage, res: ServerResponse, plan: Exclude<RoutePlan, { kind: 'local' }>): void {
    const url = req.url ?? '/';
    if (plan.kind === 'forward') {
      this.stats.forwarded++;
      this.send(req, res, plan.node, url, req, {}, null);
      return;
    }
    void this.allocate(req, res, plan, url).catch((err: unknown) => sendError(res, err));
  }

  /**
   * Reads the (small) allocation body and sends it to the chosen node. A
   * node chosen for its ready VMs may wait in line only READY_WAIT_MS, one
   * chosen for room ROOM_WAIT_MS: when it answers POOL_EXHAUSTED or cannot
   * be reached, the allocation is placed again without it. While no node has a ready VM or room, placement is
   * tried again every PLACE_RETRY_MS, up to the client's `timeout_ms` (or
   * DEFAULT_PLACE_WAIT_MS), then POOL_EXHAUSTED.
   */
  private async allocate(req: IncomingMessage, res: ServerResponse, plan: Extract<RoutePlan, { kind: 'allocate' }>, url: string): Promise<void> {
    const body = await readBounded(req, MAX_ALLOCATE_BODY, 'the allocation body');
    const deadline = Date.now() + waitOf(body);
    let next: { node: NodeInfo; reason: 'ready' | 'capacity' } | null = plan.first;
    let exclude = new Set<string>();
    for (;;) {
      if (res.destroyed) return;
      if (next !== null) {
        const self = next.node.name === this.membership.name;
        const outcome = await this.sendBuffered(req, res, next.node, url, withShortWait(body, next.reason === 'ready' ? READY_WAIT_MS : ROOM_WAIT_MS));
        if (outcome === 'sent') {
          if (self) this.stats.placedLocal++;
          else this.stats.placedRemote++;
          return;
        }
        this.stats.retries++;
        exclude.add(next.node.name);
      }
      const choice = placeVm(plan.pool, this.placementView(), this.random, { exclude });
      if (choice !== null) {
        next = { node: choice.node === this.membership.name ? this.membership.info() : this.membership.resolve(choice.node), reason: choice.reason };
        continue;
      }
      if (Date.now() >= deadline) {
        sendError(
          res,
          new PoolExhaustedError(
            `no node of the cluster had a ready VM of pool ${plan.pool} or room for one in time; retry later, or add nodes or raise pools.${plan.pool}.max`,
            {
              details: { pool: plan.pool, nodes: this.membership.nodes().map((n) => n.name) },
            },
          ),
        );
        return;
      }
      // Everyone was tried (or is full): wait for refills or releases, then try everyone again.
      next = null;
      exclude = new Set();
      await new Promise((r) => setTimeout(r, PLACE_RETRY_MS));
    }
  }

  /** Sends a buffered request; a POOL_EXHAUSTED answer or a failed connection resolves to the error instead of reaching the client. */
  private sendBuffered(req: IncomingMessage, res: ServerResponse, node: NodeInfo, url: string, body: Buffer): Promise<'sent' | Error> {
    return new Promise((resolve) => {
      this.send(req, res, node, url, body, { [PLACED_HEADER]: node.name }, resolve);
    });
  }

  /**
   * One upstream request to `node`. The body is `source` piped (a stream) or
   * a buffer. `retry`, when given, receives POOL_EXHAUSTED answers and
   * connection failures instead of the client; 'sent' otherwise.
   */
  private send(
    req: IncomingMessage,
    res: ServerResponse,
    node: NodeInfo,
    url: string,
    source: IncomingMessage | Buffer,
    extra: Record<string, string>,
    retry: ((outcome: 'sent' | Error) => void) | null,
  ): void {
    const target = new URL(url, node.url);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !DROPPED_REQUEST_HEADERS.has(k)) headers[k] = v;
    headers.authorization = `Bearer ${this.options.token}`;
    headers[FORWARDED_BY_HEADER] = this.membership.name;
    Object.assign(headers, extra);
    if (Buffer.isBuffer(source)) {
      delete headers['transfer-encoding'];
      headers['content-length'] = String(source.length);
    }
    const https = target.protocol === 'https:';
    const upstream: ClientRequest = (https ? httpsRequest : httpRequest)(target, {
      method: req.method,
      headers,
      agent: https ? this.httpsAgent : this.httpAgent,
    });
    let connectTimer: NodeJS.Timeout | undefined;
    const unreachable = (why: string) =>
      new NodeUnreachableError(
        `node ${node.name} (${node.url}) did not take the forwarded call: ${why}; it still holds its etcd lease, retry or check it with tfc cluster ls`,
        {
          details: { node: node.name, url: node.url },
        },
      );
    upstream.on('socket', (socket) => {
      if (!socket.connecting) return;
      connectTimer = setTimeout(() => upstream.destroy(unreachable(`no connection within ${this.options.connectTimeoutMs} ms`)), this.options.connectTimeoutMs);
      socket.once('connect', () => clearTimeout(connectTimer));
    });
    // The client went away: abort the upstream call (stops a stream, an exec's wait).
    const onClientClose = () => {
      if (!res.writableFinished) upstream.destroy();
    };
    res.on('close', onClientClose);
    upstream.on('error', (err) => {
      clearTimeout(connectTimer);
      const e = err instanceof TfcError ? err : unreachable(err.message);
      if (retry && !res.headersSent) {
        res.off('close', onClientClose);
        retry(e);
        return;
      }
      sendError(res, e);
    });
    upstream.on('response', (up) => {
      clearTimeout(connectTimer);
      if (retry && up.statusCode === 503) {
        // Read the (small) error to see whether another node should be asked.
        readBounded(up, MAX_ERROR_BODY, 'an error answer')
          .then((buf) => {
            let code: string | undefined;
            try {
              code = (JSON.parse(buf.toString()) as { error?: { code?: string } }).error?.code;
            } catch {
              code = undefined;
            }
            if (code === 'POOL_EXHAUSTED' || code === 'CLUSTER_UNAVAILABLE') {
              res.off('close', onClientClose);
              retry(new ClusterUnavailableError(`node ${node.name} answered ${code}`));
              return;
            }
            relayHead(res, up, node.name);
            res.end(buf);
            retry('sent');
          })
          .catch((err: unknown) => sendError(res, err));
        return;
      }
      relayHead(res, up, node.name);
      up.pipe(res);
      up.on('error', () => res.destroy());
      up.on('aborted', () => res.destroy());
      retry?.('sent');
    });
    if (Buffer.isBuffer(source)) upstream.end(source);
    else source.pipe(upstream);
  }

  /**
   * The view placement decides on: this node's own pools as they are now,
   * the others' as they last published them (up to one publish interval
   * old; a node whose ready VMs went meanwhile answers POOL_EXHAUSTED within
   * READY_WAIT_MS and the allocation is placed once more).
   */
  private placementView(): NodeView[] {
    const { localPools, localVms } = this.options;
    return this.membership
      .nodes()
      .map((n) => (n.name === this.membership.name ? { ...n, ...(localPools ? { pools: localPools() } : {}), ...(localVms ? { vms: localVms() } : {}) } : n));
  }

  /** Names this node's VMs in a JSON answer: every string that is exactly a bare VM id becomes `NODE~vm-…`. */
  nameIds(payload: string, url: string): string {
    // Only the VM and pool routes: ids elsewhere (snapshots, /v1/run, the Terraphim API) are used with this node's own routes.
    if (!NAMED_PATHS.test(url)) return payload;
    return payload.replace(/"(vm-[0-9a-f]{12})"/g, `"${this.membership.name}${NODE_SEPARATOR}$1"`);
  }

  async describe(fresh: boolean): Promise<ClusterDescription> {
    // `fresh` checks the node list against etcd (a linearizable read: CLUSTER_UNAVAILABLE without a quorum).
    const live = fresh ? new Set((await this.membership.liveNodes()).map((n) => n.name)) : null;
    const nodes = this.membership
      .nodes()
      .filter((n) => live === null || live.has(n.name))
      .map((n) => ({
        name: n.name,
        url: n.url,
        version: n.version,
        started_at: n.started_at,
        capacity: n.capacity,
        vms: n.vms,
        pools: n.pools,
        vm_list: n.vm_list.map((vm) => ({ id: formatVmId(n.name, vm.id), pool: vm.pool, state: vm.state })),
        vm_list_truncated: n.vm_list_truncated,
      }));
    // Views lag: this node itself is always listed (its own key may be on its way).
    if (!nodes.some((n) => n.name === this.membership.name) && this.membership.healthy()) {
      const self = this.membership.info();
      nodes.push({ ...self, vms: 0, pools: {}, vm_list: [], vm_list_truncated: false });
      nodes.sort((a, b) => (a.name < b.name ? -1 : 1));
    }
    const departed = this.membership.view.departures().map((d) => {
      const reason = lostReason(d.node.name, d.at);
      return {
        name: d.node.name,
        url: d.node.url,
        left_at: d.at,
        vms: d.vms,
        state: 'lost' as const,
        reason,
        vm_list: d.list.map((vm) => ({ id: formatVmId(d.node.name, vm.id), pool: vm.pool, state: 'lost' as const, reason })),
        vm_list_truncated: d.truncated,
      };
    });
    return { node: this.membership.name, healthy: this.membership.healthy(), nodes, departed };
  }

  /** Closes idle keep-alive connections to other nodes. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/** The client's `timeout_ms` (how long it will wait for a VM), else DEFAULT_PLACE_WAIT_MS. */
function waitOf(body: Buffer): number {
  try {
    const given = (JSON.parse(body.length === 0 ? '{}' : body.toString()) as { timeout_ms?: unknown }).timeout_ms;
    return typeof given === 'number' && given >= 0 ? Math.min(given, 600_000) : DEFAULT_PLACE_WAIT_MS;
  } catch {
    return DEFAULT_PLACE_WAIT_MS;
  }
}

/** The allocation body with `timeout_ms` at most `limitMs` (unchanged when it is not a JSON object: the node answers 400). */
function withShortWait(body: Buffer, limitMs: number): Buffer {
  try {
    const parsed: unknown = body.length === 0 ? {} : JSON.parse(body.toString());
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return body;
    const given = (parsed as { timeout_ms?: unknown }).timeout_ms;
    const wait = typeof given === 'number' ? Math.min(given, limitMs) : limitMs;
    return Buffer.from(JSON.stringify({ ...parsed, timeout_ms: wait }));
  } catch {
    return body;
  }
}

function relayHead(res: ServerResponse, up: IncomingMessage, node: string): void {
  if (res.headersSent) return;
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !DROPPED_RESPONSE_HEADERS.has(k)) headers[k] = v;
  headers[SERVED_BY_HEADER] = node;
  res.writeHead(up.statusCode ?? 502, headers);
}

/** Reads a whole stream of at most `limit` bytes; rejects with PAYLOAD_TOO_LARGE past it. */
function readBounded(stream: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        stream.destroy();
        reject(new PayloadTooLargeError(`${what} is larger than ${limit} bytes; it cannot be forwarded to another node`));
        return;
      }
      chunks.push(c);
    });
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
    stream.on('aborted', () => reject(new Error(`${what} was cut off`)));
  });
}
