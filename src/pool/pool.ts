import { PoolExhaustedError, VmNotFoundError, InvalidStateError } from '../errors/index.js';
import type { PoolConfig, Profile } from '../config/index.js';
import type { Vm } from '../vm/vm.js';
import { DemandTracker } from './demand.js';
import { LeaseTimers, leaseTtl } from './leases.js';
import { seededRandom, STRATEGIES, type StrategyState } from './strategies.js';
import type { Allocation, PoolBackend, PoolEvent, PoolEventKind, PoolMember, PoolStatus } from './pool-types.js';

export type { PoolMember, PoolStatus, Allocation, PoolBackend, PoolEvent, PoolEventKind } from './pool-types.js';

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
  private readonly leases = new LeaseTimers();

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
    this.leases.clearAll();
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
   * PoolExhaustedError with `details.retry_after_ms`. The allocation holds
   * a lease of `ttlMs` (default lease_ms; above max_lease_ms is
   * InvalidArgumentError): when it runs out the VM is destroyed (fresh) or
   * recycled (reuse) unless `keepalive` renewed it or it was released.
   */
  async allocate(options: { owner?: string; timeoutMs?: number; ttlMs?: number } = {}): Promise<Allocation> {
    if (this.stopped) throw new PoolExhaustedError(`pool ${this.name} is shutting down`);
    const ttlMs = leaseTtl(this.config, options.ttlMs);
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
        // at once: its (slow) destruction happens in the background. (It may
        // have died meanwhile and been reaped already.)
        if (this.members.get(member.vm.id) === member) {
          this.report('replaced', `${member.vm.id} failed its allocation check`);
          this.removeInBackground(member, 'failed its allocation check');
        }
        this.pump();
        continue;
      }
      member.uses += 1;
      member.lastUsedAt = this.now();
      if (options.owner) member.owner = options.owner;
      this.startLease(member, ttlMs);
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
    // First, synchronously: a lease running out during the awaits below must not destroy a VM being parked.
    this.endLease(member);
    const tooOld = this.now() - member.createdAt > this.config.maxAgeMs;
    // A reuse VM without an owner would be handed to the next caller with the last one's files in it.
    const reason =
      this.config.mode === 'fresh'
        ? 'released (fresh pool)'
        : member.owner === undefined
          ? 'recycled (allocated without an owner)'
          : member.uses >= this.config.maxUses || tooOld || member.vm.state !== 'running'
            ? 'recycled'
            : null;
    if (reason) {
      const failed = await this.remove(member, reason);
      this.pump();
      // The VM is gone either way; the caller learns what could not be recorded (STORE_ERROR).
      if (failed) throw failed;
      return;
    }
    try {
      if (this.config.prewarmState === 'paused') await member.vm.pause();
      // It may have died (and been reaped) while pausing: never offer a removed member.
      if (this.members.get(vmId) === member) {
        member.status = 'ready';
        this.offer(member);
      }
    } catch (err) {
      // Released, but it cannot be parked (its VMM died): recycle it instead.
      this.report('replaced', `${vmId} could not be paused on release: ${(err as Error).message}`);
      await this.remove(member, 'could not be paused on release');
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
      await this.rewarm(vm);
      if (this.config.prewarmState === 'paused') await vm.pause();
    } catch (err) {
      // A clone that cannot be parked (its VMM died right after restore) is not offered.
      if (!this.stopped) this.failRefill(`prewarm of ${vm.id} failed: ${(err as Error).message}`);
      await this.backend.destroy(vm, this.stopped ? 'pool stopped' : 'prewarm failed').catch(() => undefined);
      return;
    }
    const member: PoolMember = { vm, seq: this.seq++, status: 'ready', readyLatencyMs, createdAt: this.now(), lastUsedAt: this.now(), uses: 0 };
    this.members.set(vm.id, member);
    member.unwatch = vm.onFailed((reason) => this.reap(member, reason));
    this.offer(member);
    this.pump();
  }

  /**
   * Runs the profile's warmup in a new member before it is offered
   * (`pools.X.rewarm`): a clone is a new VMM process, and under TCG its first
   * interpreter start translates the code afresh (measured: python3 -c
   * 'print(1)' 520-560 ms first, 160-195 ms after). Done here, the request
   * path gets the warm case. A warmup that fails means the VM is not offered.
   */
  private async rewarm(vm: Vm): Promise<void> {
    const argv = this.profile.warmup ?? [];
    if (!this.config.rewarm || argv.length === 0) return;
    const r = await vm.exec({ argv, timeoutMs: this.profile.bootTimeoutMs });
    if (r.exitCode !== 0) throw new Error(`warmup ${JSON.stringify(argv)} exited with ${r.exitCode ?? r.signal}: ${r.stderr.toString('utf8').slice(-500)}`);
  }

  /** Records why a refill failed and retries later (not in a tight loop). */
  private failRefill(message: string): void {
    this.lastError = message;
    this.report('refill-failed', message);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.pump(), REFILL_RETRY_MS);
    this.retryTimer.unref();
  }

  /**
   * Takes the member out of the pool (synchronously) and destroys its VM.
   * Never throws: returns the destroy failure (also reported as an event).
   */
  private async remove(member: PoolMember, reason: string): Promise<Error | undefined> {
    if (this.members.get(member.vm.id) === member) this.members.delete(member.vm.id);
    this.endLease(member);
    member.unwatch?.();
    try {
      await this.backend.destroy(member.vm, reason);
      return undefined;
    } catch (err) {
      this.report('destroy-failed', `${member.vm.id}: ${(err as Error).message}`);
      return err as Error;
    }
  }

  /** `remove` without waiting; `stop()` still waits for it. */
  private removeInBackground(member: PoolMember, reason: string): void {
    const job: Promise<unknown> = this.remove(member, reason).finally(() => this.inflight.delete(job));
    this.inflight.add(job);
  }

  /**
   * Renews the lease of allocated VM `vmId` for `ttlMs` from now (default:
   * the TTL it was allocated with). Throws VmNotFoundError when this pool
   * does not own it, InvalidStateError when it is not allocated,
   * InvalidArgumentError above max_lease_ms.
   */
  keepalive(vmId: string, ttlMs?: number): PoolMember {
    const member = this.members.get(vmId);
    if (!member) throw new VmNotFoundError(`pool ${this.name} has no VM "${vmId}"`);
    if (member.status !== 'allocated') {
      throw new InvalidStateError(`VM ${vmId} is not allocated (it is ${member.status} in pool ${this.name}); only an allocation has a lease to extend`, {
        details: { vm_id: vmId, state: member.status },
      });
    }
    this.startLease(member, leaseTtl(this.config, ttlMs ?? member.leaseMs));
    return member;
  }

  private startLease(member: PoolMember, ttlMs: number): void {
    member.leaseMs = ttlMs;
    member.expiresAt = this.leases.start(member.vm.id, ttlMs, () => this.expire(member));
  }

  private endLease(member: PoolMember): void {
    this.leases.clear(member.vm.id);
    member.expiresAt = undefined;
  }

  /** The lease ran out: fresh pools destroy the VM, reuse pools recycle it (a new clone takes its slot). */
  private expire(member: PoolMember): void {
    if (this.stopped || this.members.get(member.vm.id) !== member || member.status !== 'allocated') return;
    const reason = this.config.mode === 'fresh' ? 'lease expired' : 'lease expired (recycled)';
    this.report('lease-expired', `${member.vm.id} (owner ${member.owner ?? 'none'}): ${reason} after ${member.leaseMs} ms`);
    this.removeInBackground(member, reason);
    this.pump();
  }

  /**
   * A member's VM died on its own (VMM exit, agent protocol violation),
   * idle or allocated: its slot is freed at once and refilled. The VM
   * keeps its `failed` record with the reason.
   */
  private reap(member: PoolMember, reason: string): void {
    if (this.members.get(member.vm.id) !== member) return;
    this.report('died', `${member.vm.id} (${member.status}${member.owner ? `, owner ${member.owner}` : ''}) died: ${reason}`);
    this.removeInBackground(member, `slot freed after the VM died: ${reason}`);
    this.pump();
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
    // Allocated VMs are not pinged (their agent may be busy for the caller),
    // but one whose VMM is gone is dead: its slot must not stay taken.
    for (const m of [...this.members.values()]) {
      if (m.status === 'allocated' && (m.vm.state === 'failed' || m.vm.state === 'stopped')) this.reap(m, `found ${m.vm.state} by the health check`);
    }
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
    // Through remove(): a failed destroy is reported, the death watch ends, and stop() waits for it.
    for (const m of doomed) this.removeInBackground(m, 'above target');
    this.pump();
  }
}
