/**
 * The demand and supply math of a pool (pure: no timers, no VMs).
 *
 * - `DemandTracker` estimates the allocation rate and the refill lead time
 *   and sizes the pool's target from them (`coveringSize`).
 * - `coveringSize` is the inventory rule: how many VMs must be ready or on
 *   their way so an allocation finds one with the wanted probability.
 * - `estimateWaitMs` tells a queued allocation how long it may wait.
 */

/** The target keeps the probability that an allocation finds no ready VM at or below this (so p99 is a warm allocation). */
export const EMPTY_PROBABILITY = 0.01;

/** Rates are averaged over at least this long, so the first allocation reads as 1 per second, not as infinity. */
const MIN_RATE_WINDOW_MS = 1000;

/** Refill utilisation (λR / c) from which the target is simply the pool's max. */
const SATURATED = 0.9;

/** Results of `coveringSize` kept per tracker (inputs are quantised, so a steady pool computes each once). */
const CACHE_LIMIT = 256;

/**
 * An exponentially smoothed event rate (per ms): each event adds an impulse
 * whose integral over the decay is one event. Bias-corrected from its first
 * event (like Adam's moment estimates), so a rate that starts from nothing
 * reads right within a second instead of rising over several half-lives.
 */
class SmoothedRate {
  private value = 0;
  private at: number | null = null;
  private since: number | null = null;

  constructor(private readonly halfLifeMs: number) {}

  add(now: number): void {
    this.decayTo(now);
    this.since ??= now;
    this.value += Math.LN2 / this.halfLifeMs;
  }

  perMs(now: number): number {
    this.decayTo(now);
    if (this.since === null) return 0;
    const elapsed = Math.max(MIN_RATE_WINDOW_MS, now - this.since);
    return this.value / (1 - Math.pow(0.5, elapsed / this.halfLifeMs));
  }

  private decayTo(now: number): void {
    if (this.at !== null && now > this.at) this.value *= Math.pow(0.5, (now - this.at) / this.halfLifeMs);
    this.at = Math.max(now, this.at ?? now);
  }
}

/**
 * Demand tracking for a pool's target size: the allocation rate (the larger
 * of a fast and a slow exponentially smoothed estimate: the target rises
 * within seconds of a burst and falls over minutes) and the refill lead time
 * (restore start to a VM offered; smoothed mean plus smoothed deviation, as
 * TCP estimates its retransmission timeout, because restore times vary).
 */
export class DemandTracker {
  private readonly slow: SmoothedRate;
  private readonly fast: SmoothedRate;
  private refillMs: number | null = null;
  private refillDevMs = 0;
  private seenDemand = false;
  private readonly cache = new Map<string, number>();

  /**
   * @param halfLifeMs how quickly old demand is forgotten (default 30 s); the
   *   fast estimate uses a sixth of it.
   */
  constructor(halfLifeMs = 30_000) {
    this.slow = new SmoothedRate(halfLifeMs);
    this.fast = new SmoothedRate(halfLifeMs / 6);
  }

  /** Records one allocation at time `now` (ms). */
  recordAllocation(now: number): void {
    this.seenDemand = true;
    this.slow.add(now);
    this.fast.add(now);
  }

  /** Records how long one refill took (restore start to the VM offered). */
  recordRefill(ms: number): void {
    if (this.refillMs === null) {
      this.refillMs = ms;
      this.refillDevMs = ms / 4;
      return;
    }
    this.refillDevMs = 0.75 * this.refillDevMs + 0.25 * Math.abs(ms - this.refillMs);
    this.refillMs = 0.8 * this.refillMs + 0.2 * ms;
  }

  /** Smoothed allocations per second at `now`. */
  rate(now: number): number {
    return Math.max(this.slow.perMs(now), this.fast.perMs(now)) * 1000;
  }

  get smoothedRefillMs(): number | null {
    return this.refillMs;
  }

  /** The refill time the target plans with: smoothed mean plus smoothed deviation (null before the first refill). */
  get leadTimeMs(): number | null {
    return this.refillMs === null ? null : this.refillMs + this.refillDevMs;
  }

  /**
   * The target at `now`: `initial` until the first allocation (no demand
   * seen yet), then `coveringSize` of the allocations expected during one
   * lead time with `concurrency` refills in parallel, clamped to [min, max].
   * Before the first refill is measured the lead time is taken as 1 s.
   */
  target(now: number, bounds: { min: number; max: number; initial: number; concurrency: number }): number {
    const clamp = (n: number) => Math.min(bounds.max, Math.max(bounds.min, n));
    if (!this.seenDemand) return clamp(bounds.initial);
    const perRefill = (this.rate(now) / 1000) * (this.leadTimeMs ?? 1000);
    // Quantised to 1% (relative), so a steady pool reuses its answers; below 1e-3 it is no demand.
    const q = perRefill < 1e-3 ? null : Math.round(Math.log(perRefill) / Math.log(1.01));
    const key = `${q}/${bounds.concurrency}/${bounds.max}`;
    let size = this.cache.get(key);
    if (size === undefined) {
      size = coveringSize(q === null ? 0 : Math.pow(1.01, q), bounds.concurrency, EMPTY_PROBABILITY, bounds.max);
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(key, size);
    }
    return clamp(size);
  }
}

/** Poisson(mean) probabilities of 0..count-1, the last one holding the rest of the tail. */
function poissonTerms(mean: number, count: number): Float64Array {
  const terms = new Float64Array(count);
  terms[0] = Math.exp(-mean);
  let total = terms[0];
  for (let k = 1; k < count - 1; k++) {
    terms[k] = (terms[k - 1] * mean) / k;
    total += terms[k];
  }
  terms[count - 1] = Math.max(0, 1 - total);
  return terms;
}

/**
 * The inventory rule. Allocations arrive as a Poisson process, each one
 * starts a refill at once, at most `concurrency` refills run at a time (the
 * rest queue) and each takes the same lead time R. `perRefill` = λR is the
 * number of allocations expected during one refill. A pool of size S (ready
 * plus refilling) is empty when an allocation arrives iff S or more refills
 * are outstanding, and the outstanding refills are the customers of an
 * M/D/c queue. Their number at the instants kR follows Crommelin's
 * recurrence Q' = max(Q - c, 0) + Poisson(λR); its stationary law is solved
 * exactly here (GTH state reduction, stable: no subtractions). With c = ∞
 * it is Poisson(λR); near capacity the queue for refill slots about doubles
 * the size needed (c = 1, λR = 0.5: Poisson says 4, the queue 5).
 *
 * Returns the smallest S >= 1 with P(Q >= S) <= `emptyProbability`, or
 * `limit` when that needs more than `limit` VMs or when λR >= 0.9 c (near
 * or beyond refill capacity the size needed explodes; beyond it no size is
 * enough, and the queue and Retry-After take over). Pure; O(K^2 c) for
 * K = 2 (c + λR + 8 sqrt(λR) + 16) states, or limit + c + ... when the
 * answer is near the limit (all bounded by the pool's max).
 */
export function coveringSize(perRefill: number, concurrency: number, emptyProbability: number, limit: number): number {
  if (!(perRefill >= 0) || !(concurrency >= 1) || !(emptyProbability > 0) || !(limit >= 1)) {
    throw new RangeError(
      `coveringSize needs perRefill >= 0, concurrency >= 1, emptyProbability > 0, limit >= 1 (got ${perRefill}, ${concurrency}, ${emptyProbability}, ${limit})`,
    );
  }
  if (perRefill === 0) return 1;
  // At 90% of refill capacity and above the size needed explodes: every VM the pool may have.
  if (perRefill >= SATURATED * concurrency || perRefill >= limit) return limit;
  const c = Math.floor(Math.min(concurrency, limit + 1));
  // States 0..k-1, the last one standing for "that many or more". First a
  // chain just past where the mass is; if the answer comes near its top (or
  // reaches `limit`), again with room past `limit`, where lumping the tail
  // cannot move P(Q >= limit).
  const spread = Math.ceil(perRefill + 8 * Math.sqrt(perRefill)) + 16;
  const full = limit + c + spread;
  const small = Math.min(full, 2 * c + 2 * spread);
  const first = smallestCovering(perRefill, c, emptyProbability, small);
  if (small === full || first + c + 16 <= small) return Math.min(limit, first);
  return Math.min(limit, smallestCovering(perRefill, c, emptyProbability, full));
}

/** coveringSize on a chain of `k` states (see there). */
function smallestCovering(perRefill: number, c: number, emptyProbability: number, k: number): number {
  const arrivals = poissonTerms(perRefill, k);
  // Row-stochastic transition matrix, dense (k is a few hundred at most): P[n][j] = P(Q' = j | Q = n).
  const p = new Float64Array(k * k);
  // low[n]: the lowest column row n can reach (n - c, lowered by fill-in).
  const low = new Int32Array(k);
  for (let n = 0; n < k; n++) {
    const base = Math.max(0, n - c);
    low[n] = base;
    for (let j = 0; base + j < k; j++) p[n * k + base + j] += base + j === k - 1 ? sumFrom(arrivals, j) : arrivals[j];
  }
  // GTH: eliminate states from the top; s[n] = probability of leaving n downwards.
  const s = new Float64Array(k);
  for (let n = k - 1; n >= 1; n--) {
    let down = 0;
    for (let j = low[n]; j < n; j++) down += p[n * k + j];
    s[n] = down;
    for (let i = 0; i < n; i++) {
      const toN = p[i * k + n];
      if (toN === 0) continue;
      const f = toN / down;
      for (let j = low[n]; j < n; j++) p[i * k + j] += f * p[n * k + j];
      if (low[n] < low[i]) low[i] = low[n];
    }
  }
  const pi = new Float64Array(k);
  pi[0] = 1;
  let total = 1;
  for (let n = 1; n < k; n++) {
    let inflow = 0;
    for (let i = 0; i < n; i++) inflow += pi[i] * p[i * k + n];
    pi[n] = inflow / s[n];
    total += pi[n];
  }
  // Smallest S with P(Q >= S) <= emptyProbability: walk the tail down from the top.
  let tail = 0;
  let size = k;
  while (size > 1 && tail + pi[size - 1] / total <= emptyProbability) {
    tail += pi[size - 1] / total;
    size -= 1;
  }
  return size;
}

function sumFrom(values: Float64Array, from: number): number {
  let sum = 0;
  for (let i = from; i < values.length; i++) sum += values[i];
  return sum;
}

/**
 * How long the allocation at `position` in the queue (1 = next) can expect
 * to wait, in ms: refills hand out one VM per slot every `refillMs`; a slot
 * restoring now finishes after what is left of its refill (`elapsedMs` of
 * each running refill), a free one after a full refill, and one running
 * past `refillMs` as if it had just begun (it may be stuck: a retry hint of
 * "any moment now" would have callers hammer the pool). Releases of reuse
 * VMs can only make it sooner; a pool at its max starts refills only as
 * allocated VMs go, so there it is a lower bound. Pure.
 */
export function estimateWaitMs(position: number, refillMs: number, concurrency: number, elapsedMs: readonly number[]): number {
  const slots = Math.max(1, concurrency, elapsedMs.length);
  const finishes = [...elapsedMs.map((e) => (e < refillMs ? refillMs - e : refillMs)), ...new Array<number>(slots - elapsedMs.length).fill(refillMs)].sort(
    (a, b) => a - b,
  );
  const k = Math.max(0, Math.floor(position) - 1);
  return finishes[k % slots] + Math.floor(k / slots) * refillMs;
}
