import { PoolExhaustedError, VmNotFoundError, InvalidStateError } from '../errors/index.js';
import type { PoolConfig, Profile } from '../config/index.js';
import type { Vm } from '../vm/vm.js';
import { DemandTracker } from './demand.js';
import { seededRandom, STRATEGIES, type StrategyState } from './strategies.js';

/** One VM the pool owns. */
export interface PoolMember {
  vm: Vm;
  seq: number;
  status: 'ready' | 'allocated';
  readyLatencyMs: number;
  createdAt: number;
  lastUsedAt: number;
  uses: number;
  /** Reuse pools: the owner a released VM is kept for. */
  owner?: string;
}

export interface PoolStatus {
  name: string;
  profile: string;
  mode: PoolConfig['mode'];
  strategy: PoolConfig['strategy'];
  prewarm_state: PoolConfig['prewarmState'];
  min: number;
  max: number;
  target: number;
  ready: number;
  booting: number;
  allocated: number;
  /** Smoothed allocations per second (what the target follows). */
  demand_per_s: number;
  /** Smoothed restore time of a new VM. */
  refill_ms: number | null;
  /** Last refill failure, if the pool cannot currently make VMs. */
  last_error: string | null;
}

export interface Allocation {
  member: PoolMember;
  /** From the allocate call to a resumed VM whose agent answered. */
  allocationMs: number;
}

/** How the pool makes and destroys VMs (the pool manager wires the snapshot manager and VM service in). */
export interface PoolBackend {
  /** A new VM cloned from the profile's golden snapshot, running, agent ready. */
  create(profile: Profile): Promise<Vm>;
  destroy(vm: Vm, reason: string): Promise<void>;
}

export type PoolEventKind = 'refill-failed' | 'replaced' | 'destroy-failed';

/** Something an operator may want in the log; the daemon logs these. */
export interface PoolEvent {
  pool: string;
  kind: PoolEventKind;
  message: string;
}

interface Waiter {
  owner?: string;
  resolve(member: PoolMember): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

const PING_TIMEOUT_MS = 2000;
const REFILL_RETRY_MS = 1000;

/**
 * A warm pool: keeps `target` VMs ready (within [min, max]), hands them out
 * with its strategy, refills, health-checks idle VMs and follows demand.
 * All bookkeeping is synchronous on the event loop, so two allocations can
 * never get the same VM.
 */
export class Pool {
  private readonly members = new Map<string, PoolMember>();
  private readonly waiters: Waiter[] = [];
  private readonly demand = new DemandTracker();
  private readonly strategyState: StrategyState;
  private booting = 0;
  private seq = 0;
  private stopped = false;
  private started = false;
  private lastError: string | null = null;
  private retryTimer?: NodeJS.Timeout;
  private healthTimer?: NodeJS.Timeout;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    readonly config: PoolConfig,
    readonly profile: Profile,
    private readonly backend: PoolBackend,
    private readonly now: () => number = () => performance.now(),
    private readonly onEvent?: (event: PoolEvent) => void,
  ) {
    this.strategyState = { lastSeq: -1, random: seededRandom(config.strategySeed) };
  }

  get name(): string {
    return this.config.name;
  }

  /** Starts refilling to target and health-checking. Idempotent. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.pump();
    this.healthTimer = setInterval(() => void this.healthCheck(), this.config.healthIntervalMs);
    this.healthTimer.unref();
  }

  /** Stops refilling, fails waiting allocations, destroys every VM (allocated ones too). Idempotent. */
  async stop(reason = 'pool stopped'): Promise<void> {
    this.stopped = true;
    clearInterval(this.healthTimer);
    clearTimeout(this.retryTimer);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new PoolExhaustedError(`pool ${this.name} is shutting down`));
    }
    await Promise.allSettled([...this.inflight]);
    await Promise.allSettled([...this.members.values()].map((m) => this.remove(m, reason)));
  }

  target(): number {
    return this.demand.target(this.now(), { min: this.config.min, max: this.config.max, initial: this.config.target });
  }

  status(): PoolStatus {
    const all = [...this.members.values()];
    return {
      name: this.name,
      profile: this.profile.name,
      mode: this.config.mode,
      strategy: this.config.strategy,
      prewarm_state: this.config.prewarmState,
      min: this.config.min,
      max: this.config.max,
      target: this.target(),
      ready: all.filter((m) => m.status === 'ready').length,
      booting: this.booting,
      allocated: all.filter((m) => m.status === 'allocated').length,
      demand_per_s: Math.round(this.demand.rate(this.now()) * 1000) / 1000,
      refill_ms: this.demand.smoothedRefillMs === null ? null : Math.round(this.demand.smoothedRefillMs),
      last_error: this.lastError,
    };
  }

  /** The member holding VM `vmId`, if this pool owns it. */
  member(vmId: string): PoolMember | undefined {
    return this.members.get(vmId);
  }

  allMembers(): PoolMember[] {
    return [...this.members.values()];
  }

  /**
   * Hands out a ready VM: resumed if prewarmed paused, agent answering.
   * When none is ready it waits up to `timeoutMs` (default
   * allocate_timeout_ms) for a refill or a release, then throws
   * PoolExhaustedError with `details.retry_after_ms`.
   */
  async allocate(options: { owner?: string; timeoutMs?: number } = {}): Promise<Allocation> {
    if (this.stopped) throw new PoolExhaustedError(`pool ${this.name} is shutting down`);
    const started = this.now();
    this.demand.recordAllocation(started);
    const deadline = started + (options.timeoutMs ?? this.config.allocateTimeoutMs);
    for (;;) {
      const member = this.take(options.owner) ?? (await this.waitForMember(options.owner, deadline));
      try {
        if (member.vm.state === 'paused') await member.vm.resume();
        await member.vm.agent.ping({ timeoutMs: PING_TIMEOUT_MS });
      } catch {
        // A VM that cannot answer is replaced, and the caller gets another
        // at once: its (slow) destruction happens in the background.
        this.members.delete(member.vm.id);
        this.report('replaced', `${member.vm.id} failed its allocation check`);
        const destroying = this.backend
          .destroy(member.vm, 'failed its allocation check')
          .catch(() => undefined)
          .finally(() => this.inflight.delete(destroying));
        this.inflight.add(destroying);
        this.pump();
        continue;
      }
      member.uses += 1;
      member.lastUsedAt = this.now();
      if (options.owner) member.owner = options.owner;
      this.pump();
      return { member, allocationMs: Math.round((this.now() - started) * 1000) / 1000 };
    }
  }

  /**
   * Returns an allocated VM. Fresh pools destroy it; reuse pools keep it for
   * its owner until max_uses or max_age_ms, then recycle it. Throws
   * VmNotFoundError when this pool does not own the VM, InvalidStateError
   * when it is not allocated.
   */
  async release(vmId: string): Promise<void> {
    const member = this.members.get(vmId);
    if (!member) throw new VmNotFoundError(`pool ${this.name} has no VM "${vmId}"`);
    if (member.status !== 'allocated') throw new InvalidStateError(`VM ${vmId} is not allocated (it is ${member.status} in pool ${this.name})`);
    const tooOld = this.now() - member.createdAt > this.config.maxAgeMs;
    if (this.config.mode === 'fresh' || member.uses >= this.config.maxUses || tooOld || member.vm.state !== 'running') {
      await this.remove(member, this.config.mode === 'fresh' ? 'released (fresh pool)' : 'recycled');
    } else {
      try {
        if (this.config.prewarmState === 'paused') await member.vm.pause();
        member.status = 'ready';
        this.offer(member);
      } catch (err) {
        // Released, but it cannot be parked (its VMM died): recycle it instead.
        this.report('replaced', `${vmId} could not be paused on release: ${(err as Error).message}`);
        await this.remove(member, 'could not be paused on release');
      }
    }
    this.pump();
  }

  /** Takes a ready member for `owner` (reuse pools: theirs first, never someone else's). */
  private take(owner?: string): PoolMember | undefined {
    const ready = [...this.members.values()].filter((m) => m.status === 'ready' && (m.owner === undefined || m.owner === owner));
    if (ready.length === 0) return undefined;
    const own = owner ? ready.filter((m) => m.owner === owner) : [];
    const pool = own.length > 0 ? own : ready;
    const byseq = new Map(pool.map((m) => [m.seq, m]));
    const pick = STRATEGIES[this.config.strategy](
      pool.map((m) => ({ seq: m.seq, readyLatencyMs: m.readyLatencyMs, lastUsedAt: m.lastUsedAt, createdAt: m.createdAt })),
      this.strategyState,
    );
    const member = byseq.get(pick.seq)!;
    member.status = 'allocated';
    return member;
  }

  private waitForMember(owner: string | undefined, deadline: number): Promise<PoolMember> {
    this.pump();
    return new Promise((resolve, reject) => {
      const remaining = Math.max(0, deadline - this.now());
      const waiter: Waiter = {
        owner,
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          const retryAfterMs = Math.round(this.demand.smoothedRefillMs ?? 1000);
          const s = this.status();
          reject(
            new PoolExhaustedError(
              `pool ${this.name} has no ready VM (ready ${s.ready}, booting ${s.booting}, allocated ${s.allocated}, max ${s.max}); retry in about ${retryAfterMs} ms or raise pools.${this.name}.max`,
              { details: { pool: this.name, retry_after_ms: retryAfterMs, ...s } },
            ),
          );
        }, remaining),
      };
      this.waiters.push(waiter);
    });
  }

  /** Gives a newly ready member to the first waiter that may have it. */
  private offer(member: PoolMember): void {
    const i = this.waiters.findIndex((w) => member.owner === undefined || member.owner === w.owner);
    if (i < 0) return;
    const [waiter] = this.waiters.splice(i, 1);
    clearTimeout(waiter.timer);
    member.status = 'allocated';
    waiter.resolve(member);
  }

  /** Starts as many restores as the target, max and refill concurrency allow. */
  private pump(): void {
    if (this.stopped || !this.started) return;
    const all = [...this.members.values()];
    const ready = all.filter((m) => m.status === 'ready' && m.owner === undefined).length;
    let want = Math.max(this.target(), this.waiters.length) - ready - this.booting;
    while (want > 0 && this.booting < this.config.refillConcurrency && this.members.size + this.booting < this.config.max) {
      want -= 1;
      this.booting += 1;
      // refillOne handles its own failures; the catch only keeps a bug from becoming an unhandled rejection.
      const job = this.refillOne()
        .catch((err) => this.failRefill(`refill crashed: ${(err as Error).message}`))
        .finally(() => this.inflight.delete(job));
      this.inflight.add(job);
    }
  }

  private async refillOne(): Promise<void> {
    const started = this.now();
    let vm: Vm;
    try {
      vm = await this.backend.create(this.profile);
    } catch (err) {
      this.booting -= 1;
      this.failRefill((err as Error).message);
      return;
    }
    this.booting -= 1;
    this.lastError = null;
    const readyLatencyMs = vm.bootPhases.reduce((a, p) => a + p.ms, 0);
    this.demand.recordRefill(this.now() - started);
    try {
      if (this.stopped) throw new Error('pool stopped');
      if (this.config.prewarmState === 'paused') await vm.pause();
    } catch (err) {
      // A clone that cannot be parked (its VMM died right after restore) is not offered.
      if (!this.stopped) this.failRefill(`prewarm of ${vm.id} failed: ${(err as Error).message}`);
      await this.backend.destroy(vm, this.stopped ? 'pool stopped' : 'prewarm failed').catch(() => undefined);
      return;
    }
    const member: PoolMember = { vm, seq: this.seq++, status: 'ready', readyLatencyMs, createdAt: this.now(), lastUsedAt: this.now(), uses: 0 };
    this.members.set(vm.id, member);
    this.offer(member);
    this.pump();
  }

  /** Records why a refill failed and retries later (not in a tight loop). */
  private failRefill(message: string): void {
    this.lastError = message;
    this.report('refill-failed', message);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.pump(), REFILL_RETRY_MS);
    this.retryTimer.unref();
  }

  private async remove(member: PoolMember, reason: string): Promise<void> {
    this.members.delete(member.vm.id);
    await this.backend.destroy(member.vm, reason).catch((err) => this.report('destroy-failed', `${member.vm.id}: ${(err as Error).message}`));
  }

  private report(kind: PoolEventKind, message: string): void {
    this.onEvent?.({ pool: this.name, kind, message });
  }

  /**
   * Pings idle running VMs; drops dead or unresponsive ones, VMs past
   * max_age_ms, and ready VMs above the (demand-following) target; refills.
   */
  async healthCheck(): Promise<void> {
    if (this.stopped) return;
    const idle = [...this.members.values()].filter((m) => m.status === 'ready');
    await Promise.all(
      idle.map(async (m) => {
        let healthy = m.vm.state === 'running' || m.vm.state === 'paused';
        if (healthy && m.vm.state === 'running') {
          healthy = await m.vm.agent.ping({ timeoutMs: PING_TIMEOUT_MS }).then(
            () => true,
            () => false,
          );
        }
        const expired = this.now() - m.createdAt > this.config.maxAgeMs;
        if ((!healthy || expired) && m.status === 'ready' && this.members.has(m.vm.id)) {
          this.report('replaced', `${m.vm.id} ${healthy ? 'reached max age' : 'failed its health check'}`);
          await this.remove(m, healthy ? 'max age reached' : 'failed health check');
        }
      }),
    );
    const surplus = [...this.members.values()].filter((m) => m.status === 'ready' && m.owner === undefined).sort((a, b) => a.seq - b.seq);
    const excess = surplus.length + this.booting - this.target();
    // Take them out of the pool in one synchronous pass, so an allocation
    // during the (slow) stops below can never be handed one of them.
    const doomed = surplus.slice(0, Math.max(0, excess));
    for (const m of doomed) this.members.delete(m.vm.id);
    await Promise.all(doomed.map((m) => this.backend.destroy(m.vm, 'above target').catch(() => undefined)));
    this.pump();
  }
}
