import { describe, expect, it } from 'vitest';
import { coveringSize, DemandTracker, EMPTY_PROBABILITY, estimateWaitMs } from './demand.js';
import { seededRandom } from './strategies.js';

const bounds = (over: Partial<{ min: number; max: number; initial: number; concurrency: number }> = {}) => ({
  min: 1,
  max: 64,
  initial: 2,
  concurrency: 1,
  ...over,
});

/**
 * An independent check of coveringSize: a pool of `size` VMs (ready or
 * refilling) under Poisson arrivals; each allocation starts a refill of
 * `refillMs` on the first of `concurrency` slots to come free. Returns the
 * share of allocations that found no ready VM.
 */
function simulatedEmptyShare(perRefill: number, concurrency: number, size: number, arrivals = 200_000): number {
  const random = seededRandom(42);
  const refillMs = 100;
  const ratePerMs = perRefill / refillMs;
  const slotFree = new Array<number>(concurrency).fill(0);
  const done: number[] = []; // refill completion times, a binary heap
  const push = (t: number) => {
    done.push(t);
    for (let i = done.length - 1; i > 0 && done[(i - 1) >> 1] > done[i]; i = (i - 1) >> 1) [done[i], done[(i - 1) >> 1]] = [done[(i - 1) >> 1], done[i]];
  };
  const pop = () => {
    const top = done[0];
    const last = done.pop()!;
    if (done.length > 0) {
      done[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < done.length && done[l] < done[m]) m = l;
        if (r < done.length && done[r] < done[m]) m = r;
        if (m === i) break;
        [done[i], done[m]] = [done[m], done[i]];
        i = m;
      }
    }
    return top;
  };
  let now = 0;
  let ready = size; // negative: allocations waiting
  let empty = 0;
  for (let n = 0; n < arrivals; n++) {
    now += -Math.log(1 - random()) / ratePerMs;
    while (done.length > 0 && done[0] <= now) {
      pop();
      ready += 1;
    }
    if (ready <= 0) empty += 1;
    ready -= 1;
    let slot = 0;
    for (let i = 1; i < concurrency; i++) if (slotFree[i] < slotFree[slot]) slot = i;
    const start = Math.max(now, slotFree[slot]);
    slotFree[slot] = start + refillMs;
    push(start + refillMs);
  }
  return empty / arrivals;
}

describe('coveringSize', () => {
  it('is the Poisson quantile plus one when refills never queue, and one VM without demand', () => {
    // Poisson(0.5): P(N <= 2) = 0.986, P(N <= 3) = 0.998 -> 99th percentile 3, size 4.
    expect(coveringSize(0.5, 1000, 0.01, 64)).toBe(4);
    // Poisson(2): 99th percentile 6.
    expect(coveringSize(2, 1000, 0.01, 64)).toBe(7);
    expect(coveringSize(0, 1, 0.01, 64)).toBe(1);
    expect(coveringSize(0.005, 1, 0.01, 64)).toBe(1);
  });

  it('adds the refills that queue for a slot near capacity (M/D/c, Crommelin)', () => {
    // c = 1 at half capacity: Poisson alone would say 4; 4 leaves 1.5% of allocations waiting.
    expect(coveringSize(0.5, 1, 0.01, 64)).toBe(5);
    expect(coveringSize(0.3, 1, 0.01, 64)).toBe(3);
    expect(coveringSize(0.7, 1, 0.01, 64)).toBe(8);
    expect(coveringSize(1, 2, 0.01, 64)).toBe(6);
    expect(coveringSize(2, 4, 0.01, 64)).toBe(7);
  });

  it.each([
    [0.3, 1],
    [0.5, 1],
    [0.7, 1],
    [1, 2],
    [1.4, 2],
    [2, 4],
  ])('λR = %s, %s refills at once: the size keeps a simulated pool empty for at most 1%% of allocations, one less does not', (perRefill, c) => {
    const size = coveringSize(perRefill, c, EMPTY_PROBABILITY, 64);
    expect(simulatedEmptyShare(perRefill, c, size)).toBeLessThanOrEqual(EMPTY_PROBABILITY);
    expect(simulatedEmptyShare(perRefill, c, size - 1)).toBeGreaterThan(EMPTY_PROBABILITY);
  });

  it('is the limit near or beyond refill capacity, and never above it', () => {
    expect(coveringSize(0.95, 1, 0.01, 16)).toBe(16);
    expect(coveringSize(5, 4, 0.01, 16)).toBe(16);
    expect(coveringSize(0.7, 1, 0.01, 4)).toBe(4);
    expect(coveringSize(40, 64, 0.01, 8)).toBe(8);
  });

  it('answers large pools quickly', () => {
    const started = performance.now();
    expect(coveringSize(28, 32, 0.01, 256)).toBeGreaterThan(40);
    expect(coveringSize(0.85, 1, 0.01, 256)).toBeGreaterThan(10);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('refuses nonsense inputs', () => {
    expect(() => coveringSize(-1, 1, 0.01, 4)).toThrow(RangeError);
    expect(() => coveringSize(1, 0, 0.01, 4)).toThrow(RangeError);
    expect(() => coveringSize(Number.NaN, 1, 0.01, 4)).toThrow(RangeError);
  });
});

describe('DemandTracker', () => {
  it('keeps the configured target until demand is seen', () => {
    expect(new DemandTracker().target(0, bounds({ min: 1, max: 8, initial: 3 }))).toBe(3);
  });

  it('reads a new rate within seconds, not half-lives, and converges to it', () => {
    const d = new DemandTracker(30_000);
    for (let t = 0; t <= 5_000; t += 200) d.recordAllocation(t);
    expect(d.rate(5_000)).toBeGreaterThan(4);
    expect(d.rate(5_000)).toBeLessThan(6.5);
    for (let t = 5_200; t <= 120_000; t += 200) d.recordAllocation(t);
    expect(d.rate(120_000)).toBeGreaterThan(4.5);
    expect(d.rate(120_000)).toBeLessThan(5.5);
  });

  it('reads the first allocation as one per second', () => {
    const d = new DemandTracker();
    d.recordAllocation(1000);
    expect(d.rate(1000)).toBeGreaterThan(0.9);
    expect(d.rate(1000)).toBeLessThan(1.2);
  });

  it('sizes the target for the rate, the refill time and the refill concurrency', () => {
    const d = new DemandTracker(10_000);
    for (let i = 0; i < 40; i++) d.recordRefill(100);
    // The lead time is the smoothed refill time plus its (faded) deviation.
    expect(d.leadTimeMs).toBeCloseTo(100, 0);
    // 5 allocations per second for a minute: λR = 0.5.
    for (let t = 0; t <= 60_000; t += 200) d.recordAllocation(t);
    const t = 60_100; // between two allocations
    expect(d.target(t, bounds({ concurrency: 1 }))).toBe(5);
    expect(d.target(t, bounds({ concurrency: 32 }))).toBe(4);
    expect(d.target(t, bounds({ concurrency: 1, max: 3 }))).toBe(3);
  });

  it('plans with more than the mean refill time when refill times vary', () => {
    const d = new DemandTracker();
    for (let i = 0; i < 40; i++) d.recordRefill(i % 2 === 0 ? 50 : 150);
    expect(d.smoothedRefillMs!).toBeGreaterThan(80);
    expect(d.smoothedRefillMs!).toBeLessThan(120);
    expect(d.leadTimeMs!).toBeGreaterThan(d.smoothedRefillMs! + 30);
  });

  it('decays back to min when demand stops', () => {
    const d = new DemandTracker(10_000);
    d.recordRefill(1000);
    for (let t = 0; t <= 10_000; t += 100) d.recordAllocation(t);
    expect(d.target(10_000, bounds({ min: 1, max: 20 }))).toBe(20);
    expect(d.target(300_000, bounds({ min: 1, max: 20 }))).toBe(1);
  });
});

describe('estimateWaitMs', () => {
  it('hands out one VM per refill slot every refill time, free slots first finishing after a full refill', () => {
    expect([1, 2, 3].map((p) => estimateWaitMs(p, 100, 1, []))).toEqual([100, 200, 300]);
    expect([1, 2, 3, 4].map((p) => estimateWaitMs(p, 100, 2, []))).toEqual([100, 100, 200, 200]);
  });

  it('counts what is left of the refills under way', () => {
    // One slot 70 ms into its refill, the other free.
    expect([1, 2, 3, 4].map((p) => estimateWaitMs(p, 100, 2, [70]))).toEqual([30, 100, 130, 200]);
    // A refill running late may be stuck: counted as just begun, not as "any moment now".
    expect(estimateWaitMs(1, 100, 1, [250])).toBe(100);
  });
});
