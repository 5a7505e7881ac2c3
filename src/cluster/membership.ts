/**
 * Membership of one node: registers `PREFIX nodes/NODE` with an etcd lease it
 * keeps alive, watches the whole prefix into a `ClusterView`, and emits
 * `joined` / `left` as other nodes come and go (a node whose lease expires or
 * is revoked loses its keys, and the watch delivers the delete). When this
 * node's lease is lost (etcd unreachable for longer than the TTL, then back;
 * or etcd says the lease expired) it registers again with a new lease: the
 * node rejoins, and `registered` tells the publisher to write its keys again.
 *
 * Nothing here blocks local serving: `start()` returns after the first
 * attempt whether or not etcd answered, and keeps retrying in the background.
 * Only the calls that need a fresh answer from etcd (`liveNodes`,
 * `requireHealthy`) throw, with CLUSTER_UNAVAILABLE, within
 * `cluster.call_timeout_ms`.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { ClusterUnavailableError, NodeLostError, NodeUnknownError } from '../errors/index.js';
import type { ClusterConfig } from './config.js';
import { bounded } from './etcd-client.js';
import { ClusterView, lostReason, type NodeCapacity, type NodeInfo, type NodeView, type ViewEvent } from './view.js';

export type MembershipConfig = Pick<ClusterConfig, 'nodeName' | 'advertiseUrl' | 'leaseTtlS' | 'keyPrefix' | 'callTimeoutMs' | 'endpoints'>;

export interface MembershipSelf {
  version: string;
  capacity: NodeCapacity;
}

export interface MembershipOptions {
  now?: () => number;
  /**
   * Watch the pool counts of every node too (default true). A node that
   * never places VMs (only serves what others place on it) can watch the
   * nodes alone: membership changes are rare, while pool counts are the
   * bulk of the watch fan-out (docs/scaling.md). Its view then has no pools.
   */
  watchPools?: boolean;
  /** Diagnostics (default: none). The daemon passes its pino logger's methods. */
  log?: (level: 'info' | 'warn', message: string, data?: Record<string, unknown>) => void;
}

export interface MembershipEvents {
  joined: [node: NodeInfo];
  left: [node: NodeInfo, at: string];
  /** This node (re)registered under a new lease: keys written under the old one are gone. */
  registered: [leaseId: string];
  /** This node's lease was lost; it registers again as soon as etcd answers. */
  'lease-lost': [reason: string];
}

/** Wait between attempts while etcd does not answer (registration, watch). */
const RETRY_MS = 500;
/** Wait before the next keepalive after a failed one. */
const KEEPALIVE_RETRY_MS = 100;

export class Membership extends EventEmitter<MembershipEvents> {
  readonly view: ClusterView;
  private readonly nodeKey: string;
  private readonly now: () => number;
  private readonly log: NonNullable<MembershipOptions['log']>;
  private readonly startedAt: string;
  private readonly watchPrefix: string;
  private leaseId: string | null = null;
  private lastContactMs = 0;
  private tickTimer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | null = null;
  private watcher: Watcher | null = null;
  private watchTimer: NodeJS.Timeout | undefined;
  private watching: Promise<void> | null = null;
  private state: 'new' | 'running' | 'stopped' = 'new';
  /** Registrations made (1 after a clean start; more after each rejoin). */
  registrations = 0;
  /** Keepalives etcd answered. */
  keepalives = 0;
  /** Puts and deletes the watch delivered (the fan-out this node receives). */
  watchEvents = 0;

  constructor(
    private readonly client: Etcd3,
    private readonly config: MembershipConfig,
    private readonly self: MembershipSelf,
    options: MembershipOptions = {},
  ) {
    super();
    this.now = options.now ?? Date.now;
    this.log = options.log ?? (() => undefined);
    this.view = new ClusterView(config.keyPrefix);
    this.nodeKey = `${config.keyPrefix}nodes/${config.nodeName}`;
    this.watchPrefix = options.watchPools === false ? `${config.keyPrefix}nodes/` : config.keyPrefix;
    this.startedAt = new Date(this.now()).toISOString();
  }

  get name(): string {
    return this.config.nodeName;
  }

  /** The current lease (for keys that must disappear with this node), or null while unregistered. */
  get lease(): string | null {
    return this.leaseId;
  }

  /** Keepalives are sent this often: a third of the TTL, as etcd's own clients do. */
  get keepaliveIntervalMs(): number {
    return Math.floor((this.config.leaseTtlS * 1000) / 3);
  }

  info(): NodeInfo {
    return { name: this.config.nodeName, url: this.config.advertiseUrl, version: this.self.version, started_at: this.startedAt, capacity: this.self.capacity };
  }

  /**
   * Registers and starts watching; resolves after the first attempt of each,
   * successful or not (it never throws for etcd being down: it retries in
   * the background). Call once.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('Membership.start() called twice');
    this.state = 'running';
    await Promise.all([this.runTick(), this.runWatch()]);
  }

  /**
   * True while this node's lease is known to be alive: registered, and etcd
   * answered a keepalive within one keepalive interval plus the call timeout.
   */
  healthy(): boolean {
    return this.leaseId !== null && this.now() - this.lastContactMs <= this.keepaliveIntervalMs + this.config.callTimeoutMs;
  }

  /** Throws CLUSTER_UNAVAILABLE (naming `operation`) unless `healthy()`. Never waits. */
  requireHealthy(operation: string): void {
    if (this.healthy()) return;
    const since = this.lastContactMs === 0 ? 'never' : new Date(this.lastContactMs).toISOString();
    throw new ClusterUnavailableError(
      `cannot ${operation}: this node has no live etcd lease (last answer from etcd: ${since}); check that a majority of the etcd members is up`,
      {
        details: { operation, endpoints: this.config.endpoints, last_contact: since, timeout_ms: this.config.callTimeoutMs },
      },
    );
  }

  /** Live nodes as this node's watch sees them (no etcd call; may lag by the watch delay). */
  nodes(): NodeView[] {
    return this.view.nodes();
  }

  /**
   * Live nodes read from etcd now (a linearizable read: it needs a quorum).
   * Throws CLUSTER_UNAVAILABLE within `call_timeout_ms` when etcd cannot answer.
   */
  async liveNodes(): Promise<NodeInfo[]> {
    const res = await bounded(
      this.client.getAll().prefix(`${this.config.keyPrefix}nodes/`).exec(),
      this.config.callTimeoutMs,
      'list cluster nodes',
      this.config.endpoints,
    );
    const scratch = new ClusterView(this.config.keyPrefix);
    scratch.reset(res.kvs.map((kv) => ({ key: kv.key.toString(), value: kv.value.toString() })));
    return scratch.nodes().map(({ pools: _pools, vms: _vms, ...info }) => info);
  }

  /**
   * Where to forward a call for a VM on `name`. Throws NODE_LOST when the
   * node's lease expired (it is remembered as departed), NODE_UNKNOWN when
   * this node has never seen it. Uses the local view: it works (possibly
   * stale) while etcd is down, so calls between live nodes keep flowing.
   */
  resolve(name: string): NodeInfo {
    const node = this.view.node(name);
    if (node) return node;
    const gone = this.view.departure(name);
    if (gone) {
      const reason = lostReason(name, gone.at);
      throw new NodeLostError(`${reason}. Allocate a new VM`, { details: { node: name, left_at: gone.at, reason } });
    }
    const known = this.view.nodes().map((n) => n.name);
    throw new NodeUnknownError(`no node named ${name} in the cluster (known: ${known.join(', ') || 'none'}); check the VM id`, {
      details: { node: name, known_nodes: known },
    });
  }

  // --- lease: one loop, one step at a time ---

  private schedule(delayMs: number): void {
    if (this.state !== 'running') return;
    clearTimeout(this.tickTimer);
    this.tickTimer = setTimeout(() => void this.runTick(), delayMs);
  }

  private runTick(): Promise<void> {
    if (this.ticking) return this.ticking;
    this.ticking = this.tick().finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  private async tick(): Promise<void> {
    if (this.state !== 'running') return;
    if (this.leaseId === null) {
      try {
        await this.register();
        this.schedule(this.keepaliveIntervalMs);
      } catch (err) {
        this.log('warn', 'cluster registration failed; retrying', { error: (err as Error).message });
        this.schedule(RETRY_MS);
      }
      return;
    }
    const id = this.leaseId;
    try {
      const alive = await this.keepalive(id);
      if (this.leaseId !== id) {
        // Lost while the keepalive was in flight (our key was deleted): register now.
        this.schedule(0);
      } else if (alive) {
        this.keepalives++;
        this.lastContactMs = this.now();
        this.schedule(this.keepaliveIntervalMs);
      } else {
        this.loseLease('etcd reports the lease expired');
        this.schedule(0);
      }
    } catch (err) {
      // No answer: keep trying (a single stopped member must not cost the
      // lease); past the TTL, etcd has dropped it, so register again.
      if (this.now() - this.lastContactMs > this.config.leaseTtlS * 1000) {
        this.loseLease(`no answer from etcd for longer than the lease TTL (${this.config.leaseTtlS} s)`);
      } else {
        this.log('warn', 'cluster keepalive failed; retrying', { error: (err as Error).message });
      }
      // Each attempt picks a member at random: retry soon, so a stopped
      // member (refused at once) costs a few ms, not the lease.
      this.schedule(KEEPALIVE_RETRY_MS);
    }
  }

  private loseLease(reason: string): void {
    if (this.leaseId === null) return;
    this.log('warn', 'cluster lease lost; registering again', { lease: this.leaseId, reason });
    this.leaseId = null;
    this.emit('lease-lost', reason);
  }

  private async register(): Promise<void> {
    const { callTimeoutMs: t, endpoints } = this.config;
    const grant = await bounded(this.client.leaseClient.leaseGrant({ TTL: this.config.leaseTtlS, ID: 0 }), t, 'grant a lease', endpoints);
    try {
      await bounded(this.client.put(this.nodeKey).value(JSON.stringify(this.info())).lease(grant.ID).exec(), t, 'register this node', endpoints);
    } catch (err) {
      // Best effort: an unused lease would expire by itself anyway.
      this.client.leaseClient.leaseRevoke({ ID: grant.ID }).catch(() => undefined);
      throw err;
    }
    if (this.state !== 'running') {
      await this.revoke(grant.ID);
      return;
    }
    this.leaseId = grant.ID;
    this.lastContactMs = this.now();
    this.registrations++;
    this.log('info', 'cluster node registered', { node: this.config.nodeName, lease: grant.ID, ttl_s: this.config.leaseTtlS });
    this.emit('registered', grant.ID);
  }

  /** One keepalive on its own stream; true when etcd renewed the lease, false when it says the lease is gone. */
  private async keepalive(id: string): Promise<boolean> {
    const { callTimeoutMs: t, endpoints } = this.config;
    const opening = this.client.leaseClient.leaseKeepAlive();
    let stream: Awaited<typeof opening> | undefined;
    try {
      stream = await bounded(opening, t, 'keep the lease alive', endpoints);
      const s = stream;
      const res = await bounded(
        new Promise<{ TTL: string }>((resolve, reject) => {
          s.on('data', resolve);
          s.on('error', reject);
          s.write({ ID: id });
        }),
        t,
        'keep the lease alive',
        endpoints,
      );
      return Number(res.TTL) > 0;
    } finally {
      if (stream) stream.end();
      // A stream that opens after the timeout is closed at once.
      else opening.then((s) => s.end()).catch(() => undefined);
    }
  }

  private async revoke(id: string): Promise<void> {
    await bounded(this.client.leaseClient.leaseRevoke({ ID: id }), this.config.callTimeoutMs, 'leave the cluster', this.config.endpoints).catch(
      () => undefined,
    );
  }

  // --- watch: full listing, then changes from the next revision ---

  private scheduleWatch(delayMs: number): void {
    if (this.state !== 'running') return;
    clearTimeout(this.watchTimer);
    this.watchTimer = setTimeout(() => void this.runWatch(), delayMs);
  }

  private runWatch(): Promise<void> {
    if (this.watching) return this.watching;
    this.watching = this.watch()
      .catch((err: unknown) => {
        this.log('warn', 'cluster watch failed; retrying', { error: (err as Error).message });
        this.scheduleWatch(RETRY_MS);
      })
      .finally(() => {
        this.watching = null;
      });
    return this.watching;
  }

  private async watch(): Promise<void> {
    if (this.state !== 'running') return;
    await this.dropWatcher();
    const { callTimeoutMs: t, endpoints } = this.config;
    const res = await bounded(this.client.getAll().prefix(this.watchPrefix).exec(), t, 'read the cluster view', endpoints);
    this.deliver(this.view.reset(res.kvs.map((kv) => ({ key: kv.key.toString(), value: kv.value.toString() }))));
    const creating = this.client
      .watch()
      .prefix(this.watchPrefix)
      .startRevision((BigInt(res.header.revision) + 1n).toString())
      .create();
    const watcher = await bounded(creating, t, 'watch the cluster view', endpoints).catch((err: unknown) => {
      creating.then((w) => w.cancel()).catch(() => undefined);
      throw err;
    });
    if (this.state !== 'running') {
      await watcher.cancel().catch(() => undefined);
      return;
    }
    this.watcher = watcher;
    watcher.on('put', (kv: IKeyValue) => {
      this.watchEvents++;
      this.deliver(this.view.put(kv.key.toString(), kv.value.toString()));
    });
    watcher.on('delete', (kv: IKeyValue) => {
      this.watchEvents++;
      this.deliver(this.view.delete(kv.key.toString()));
    });
    // The library reconnects by itself after a stream failure; an `error`
    // (e.g. the start revision was compacted) needs a fresh listing.
    watcher.on('error', (err: Error) => {
      this.log('warn', 'cluster watch error; reloading the view', { error: err.message });
      this.scheduleWatch(RETRY_MS);
    });
  }

  private async dropWatcher(): Promise<void> {
    const w = this.watcher;
    this.watcher = null;
    if (w) {
      w.removeAllListeners('put').removeAllListeners('delete');
      await w.cancel().catch(() => undefined);
    }
  }

  private deliver(events: ViewEvent[]): void {
    for (const e of events) {
      if (e.node.name === this.config.nodeName) {
        // Our own key vanished while we hold a lease: register again.
        if (e.type === 'left' && this.leaseId !== null && this.state === 'running') {
          this.loseLease('this node’s key was deleted');
          this.schedule(0);
        }
        continue;
      }
      if (e.type === 'joined') this.emit('joined', e.node);
      else if (e.type === 'left') this.emit('left', e.node, e.at);
    }
  }

  // --- ending ---

  private async halt(): Promise<void> {
    this.state = 'stopped';
    clearTimeout(this.tickTimer);
    clearTimeout(this.watchTimer);
    await Promise.all([this.ticking?.catch(() => undefined), this.watching?.catch(() => undefined)]);
    await this.dropWatcher();
  }

  /**
   * Leaves the cluster: stops the keepalive and the watch and revokes the
   * lease, so the others see this node (and its pool keys) go at once.
   * Bounded by `call_timeout_ms`; never throws. Safe to call twice.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    await this.halt();
    const id = this.leaseId;
    this.leaseId = null;
    if (id !== null) await this.revoke(id);
  }

  /**
   * Stops everything without revoking the lease, as if the process had died:
   * the others see this node leave when the lease expires (within the TTL).
   * For tests and the scaling simulation.
   */
  async abandon(): Promise<void> {
    if (this.state === 'stopped') return;
    await this.halt();
    this.leaseId = null;
  }
}
