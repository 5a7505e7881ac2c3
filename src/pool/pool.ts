import { PoolExhaustedError, VmNotFoundError, InvalidStateError } from '../errors/index.js';
import type { PoolConfig, Profile } from '../config/index.js';
import type { Vm } from '../vm/vm.js';
import { DemandTracker, estimateWaitMs } from './demand.js';
import { LeaseTimers, leaseTtl } from './leases.js';
import { seededRandom, STRATEGIES, type StrategyState } from './strategies.js';
import type { Allocation, PoolActivity, PoolBackend, PoolEvent, PoolEventKind, PoolMember, PoolStatus } from './pool-types.js';
import { WaitQueue, type Waiter } from './wait-queue.js';
import { aheadOfDemand, rewarmPlan, runRewarm } from './rewarm.js';

export type { PoolMember, PoolStatus, Allocation, PoolBackend, PoolEvent, PoolEventKind, PoolActivity } from './pool-types.js';

const PING_TIMEOUT_MS = 2000;
const REFILL_RETRY_MS = 1000;
/** The most allocations one pool lets wait for a VM; more get POOL_EXHAUSTED at once. */
export const MAX_WAITING_ALLOCATIONS = 1024;

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

/**
 * A warm pool: keeps `target` VMs ready (within [min, max]), hands them out
 * with its strategy, refills, health-checks idle VMs and follows demand.
 * All bookkeeping is synchronous on the event loop, so two allocations can
 * never get the same VM.
 */
export class Pool {
  private readonly members = new Map<string, PoolMember>();
  private readonly waiters = new WaitQueue(MAX_WAITING_ALLOCATIONS);
  private readonly demand = new DemandTracker();
  private readonly strategyState: StrategyState;
  /** Refills in progress (restore, rewarm, pause) by number: when each started. */
  private readonly refills = new Map<number, number>();
  private refillSeq = 0;
  private pumpScheduled = false;
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
    private readonly activity?: PoolActivity,
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
    for (const w of this.waiters.drain()) {
      clearTimeout(w.timer);
      w.reject(new PoolExhaustedError(`pool ${this.name} is shutting down`));
    }
    await Promise.allSettled([...this.inflight]);
    await Promise.allSettled([...this.members.values()].map((m) => this.remove(m, reason)));
  }

  /** VMs being made (restored, rewarmed, parked) right now. */
  get booting(): number {
    return this.refills.size;
  }

  /** The demand-following target (docs/pools.md#sizing): ready plus refilling VMs that keep allocations from waiting. */
  target(): number {
    return this.demand.target(this.now(), {
      min: this.config.min,
      max: this.config.max,
      initial: this.config.target,
      concurrency: this.config.refillConcurrency,
    });
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
      waiting: this.waiters.length,
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
   * Hands out a ready VM: resumed if prewarmed paused, agent answering (an
   * idle running VM whose agent answered within skip_ping_within_ms is not
   * pinged again). When none is ready the call joins a first-come,
   * first-served line and waits up to `timeoutMs` (default
   * allocate_timeout_ms) for a refill or a release; it fails at once with
   * PoolExhaustedError when the line is full or the VM it waits for is not
   * expected before that deadline, and at the deadline otherwise, with
   * `details.retry_after_ms` estimated from the refill time and its place in
   * line. The allocation holds a lease of `ttlMs` (default lease_ms; above
   * max_lease_ms is InvalidArgumentError): when it runs out the VM is
   * destroyed (fresh) or recycled (reuse) unless `keepalive` renewed it or it
   * was released. Nothing is written to the store on this path (see
   * docs/pools.md#what-an-allocation-writes).
   */
  async allocate(options: { owner?: string; timeoutMs?: number; ttlMs?: number } = {}): Promise<Allocation> {
    const started = this.now();
    try {
      const allocation = await this.allocateVm(options);
      this.tell((a) => a.allocated?.(this.name, allocation.member.vm.id, allocation.allocationMs));
      return allocation;
    } catch (err) {
      const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'INTERNAL';
      this.tell((a) => a.allocationFailed?.(this.name, code, round3(this.now() - started)));
      throw err;
    }
  }

  /** `allocate` without the activity report. */
  private async allocateVm(options: { owner?: string; timeoutMs?: number; ttlMs?: number }): Promise<Allocation> {
    if (this.stopped) throw new PoolExhaustedError(`pool ${this.name} is shutting down`);
    const ttlMs = leaseTtl(this.config, options.ttlMs);
    const started = this.now();
    this.demand.recordAllocation(started);
    const deadline = started + (options.timeoutMs ?? this.config.allocateTimeoutMs);
    let waitMs = 0;
    let keepTurn = false;
    for (;;) {
      let member = this.take(options.owner);
      if (!member) {
        const waitStarted = this.now();
        member = await this.waitForMember(options.owner, deadline, keepTurn);
        waitMs += this.now() - waitStarted;
      }
      // The slot it leaves is refilled at once: the restore starts right after this reply is written.
      this.schedulePump();
      const checkStarted = this.now();
      const checked = !this.answeredRecently(member);
      if (checked) {
        try {
          if (member.vm.state === 'paused') await member.vm.resume();
          await member.vm.agent.ping({ timeoutMs: PING_TIMEOUT_MS });
        } catch {
          // A VM that cannot answer is replaced, and the caller gets another
          // at once, keeping its turn: its (slow) destruction happens in the
          // background. (It may have died meanwhile and been reaped already.)
          if (this.members.get(member.vm.id) === member) {
            this.report('replaced', `${member.vm.id} failed its allocation check`);
            this.removeInBackground(member, 'failed its allocation check');
          }
          keepTurn = true;
          continue;
        }
      }
      const checkMs = this.now() - checkStarted;
      member.verifiedAt = undefined;
      member.uses += 1;
      member.lastUsedAt = this.now();
      if (options.owner) member.owner = options.owner;
      this.startLease(member, ttlMs);
      return { member, allocationMs: round3(this.now() - started), waitMs: round3(waitMs), checkMs: round3(checkMs), checked };
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
    this.tell((a) => a.released?.(this.name, vmId, reason ?? 'released (kept for its owner)'));
    if (reason) {
      // remove() takes it out of the pool synchronously: its slot is refilled at once, not after the (slow) destroy.
      const removal = this.remove(member, reason);
      this.schedulePump();
      const failed = await removal;
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
      const removal = this.remove(member, 'could not be paused on release');
      this.schedulePump();
      await removal;
      return;
    }
    this.schedulePump();
  }

  /** Whether `member` may skip the allocation check: running (no resume needed) and its agent answered within skip_ping_within_ms. */
  private answeredRecently(member: PoolMember): boolean {
    const windowMs = this.config.skipPingWithinMs ?? 0;
    return windowMs > 0 && member.vm.state === 'running' && member.verifiedAt !== undefined && this.now() - member.verifiedAt <= windowMs;
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

  /**
   * Joins the line (at its front when `keepTurn`) and resolves with the VM
   * `offer` hands it. Rejects with POOL_EXHAUSTED at once when the line is
   * full or the wait expected for its place is past the deadline (once the
   * refill time is known), else when the deadline passes.
   */
  private waitForMember(owner: string | undefined, deadline: number, keepTurn: boolean): Promise<PoolMember> {
    // Counts this allocation in as soon as it is in line.
    this.schedulePump();
    const remaining = Math.max(0, deadline - this.now());
    if (this.waiters.full) {
      return Promise.reject(this.exhausted(`has ${this.waiters.length} allocations waiting, the most it queues`, this.waiters.length + 1));
    }
    const position = keepTurn ? 1 : this.waiters.length + 1;
    const expected = this.expectedWaitMs(position);
    if (expected !== null && expected > remaining) {
      return Promise.reject(
        this.exhausted(
          `has no ready VM, and one for allocation ${position} in line is expected in about ${Math.round(expected)} ms, after its ${Math.round(remaining)} ms timeout`,
          position,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { owner, resolve, reject };
      waiter.timer = setTimeout(() => {
        const at = this.waiters.remove(waiter);
        reject(this.exhausted(`has no ready VM after ${Math.round(remaining)} ms`, Math.max(1, at)));
      }, remaining);
      this.waiters.push(waiter, keepTurn);
    });
  }

  /**
   * How long the allocation at `position` in line can expect to wait, from
   * the smoothed refill time and the refills under way (null before the
   * first refill was measured).
   */
  private expectedWaitMs(position: number): number | null {
    const refillMs = this.demand.smoothedRefillMs;
    if (refillMs === null) return null;
    const now = this.now();
    return estimateWaitMs(
      position,
      refillMs,
      this.config.refillConcurrency,
      [...this.refills.values()].map((t) => now - t),
    );
  }

  /** POOL_EXHAUSTED for the allocation at `position` in line: what the pool holds, when to retry, what to change. */
  private exhausted(what: string, position: number): Error {
    const retryAfterMs = Math.max(1, Math.round(this.expectedWaitMs(position) ?? 1000));
    const s = this.status();
    const atMax = this.members.size + this.booting >= this.config.max;
    const fix = atMax
      ? `release VMs or raise pools.${this.name}.max`
      : `refills run ${this.config.refillConcurrency} at a time (pools.${this.name}.refill_concurrency)`;
    return new PoolExhaustedError(
      `pool ${this.name} ${what} (ready ${s.ready}, booting ${s.booting}, allocated ${s.allocated}, waiting ${s.waiting}, max ${s.max}); retry in about ${retryAfterMs} ms; ${fix}`,
      { details: { pool: this.name, retry_after_ms: retryAfterMs, queue_position: position, ...s } },
    );
  }

  /** Gives a newly ready member to the first waiter that may have it. */
  private offer(member: PoolMember): void {
    const waiter = this.waiters.shiftFor(member.owner);
    if (!waiter) return;
    clearTimeout(waiter.timer);
    member.status = 'allocated';
    waiter.resolve(member);
  }

  /** `pump` once, soon: after the current request's reply is written (setImmediate). */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Starts as many restores as the target, max and refill concurrency allow. */
  private pump(): void {
    // Every change of the counts is followed by a pump (or a failed refill): the activity listener coalesces.
    this.tell((a) => a.changed?.(this.name));
    if (this.stopped || !this.started) return;
    const all = [...this.members.values()];
    const ready = all.filter((m) => m.status === 'ready' && m.owner === undefined).length;
    // Base stock: the target, plus one for each allocation in line (a VM owed).
    let want = this.target() + this.waiters.length - ready - this.booting;
    while (want > 0 && this.booting < this.config.refillConcurrency && this.members.size + this.booting < this.config.max) {
      want -= 1;
      // refillOne handles its own failures; the catch only keeps a bug from becoming an unhandled rejection.
      const job = this.refillOne()
        .catch((err) => this.failRefill(`refill crashed: ${(err as Error).message}`))
        .finally(() => this.inflight.delete(job));
      this.inflight.add(job);
    }
  }

  /**
   * Makes one VM and offers it. Counts as booting (in `refills`) from its
   * first line until it is offered or given up: restore, rewarm and pause
   * are all time before the VM can serve, so they are the lead time the
   * target plans with.
   */
  private async refillOne(): Promise<void> {
    const id = this.refillSeq++;
    const started = this.now();
    this.refills.set(id, started);
    let vm: Vm;
    try {
      vm = await this.backend.create(this.profile);
    } catch (err) {
      this.refills.delete(id);
      this.failRefill((err as Error).message);
      return;
    }
    this.lastError = null;
    const readyLatencyMs = vm.bootPhases.reduce((a, p) => a + p.ms, 0);
    try {
      if (this.stopped) throw new Error('pool stopped');
      await this.rewarm(vm);
      if (this.config.prewarmState === 'paused') await vm.pause();
    } catch (err) {
      this.refills.delete(id);
      // A clone that cannot be parked (its VMM died right after restore) is not offered.
      if (!this.stopped) this.failRefill(`prewarm of ${vm.id} failed: ${(err as Error).message}`);
      await this.backend.destroy(vm, this.stopped ? 'pool stopped' : 'prewarm failed').catch(() => undefined);
      return;
    }
    this.refills.delete(id);
    this.demand.recordRefill(this.now() - started);
    // The restore ended with the agent answering (and a rewarm ran in it): verified now.
    const member: PoolMember = {
      vm,
      seq: this.seq++,
      status: 'ready',
      readyLatencyMs,
      createdAt: this.now(),
      lastUsedAt: this.now(),
      uses: 0,
      verifiedAt: this.now(),
    };
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
   * Profiles without warmup get DEFAULT_REWARM_ARGV (`true`), whose exit
   * status does not matter (docs/pools.md#rewarm).
   */
  private async rewarm(vm: Vm): Promise<void> {
    // A profile without warmup gets one tiny command (rewarm.ts), only while the pool is ahead of demand.
    const plan = rewarmPlan(this.profile, this.config.rewarm);
    const perRefill = (this.demand.rate(this.now()) / 1000) * (this.demand.leadTimeMs ?? 0);
    if (plan && (plan.strict || aheadOfDemand(this.waiters.length, perRefill, this.config.refillConcurrency))) {
      await runRewarm(plan, (request) => vm.exec(request));
    }
  }

  /** Records why a refill failed and retries later (not in a tight loop). */
  private failRefill(message: string): void {
    this.lastError = message;
    this.tell((a) => a.changed?.(this.name));
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
    this.tell((a) => a.released?.(this.name, member.vm.id, reason));
    this.removeInBackground(member, reason);
    this.schedulePump();
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
    this.schedulePump();
  }

  private report(kind: PoolEventKind, message: string): void {
    this.onEvent?.({ pool: this.name, kind, message });
  }

  /** Tells the activity listener; its failure is its own, never the pool's. */
  private tell(call: (activity: PoolActivity) => void): void {
    if (!this.activity) return;
    try {
      call(this.activity);
    } catch {
      // PoolActivity's contract: must not throw. An allocation must not fail for it.
    }
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
          if (healthy && m.status === 'ready') m.verifiedAt = this.now();
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
