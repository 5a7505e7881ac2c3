import { describe, expect, it } from 'vitest';
import { DemandTracker } from './demand.js';

describe('DemandTracker', () => {
  it('keeps the configured target until demand is seen', () => {
    expect(new DemandTracker().target(0, { min: 1, max: 8, initial: 3 })).toBe(3);
  });

  it('converges to the steady allocation rate and sizes the target by refill time', () => {
    const d = new DemandTracker(10_000);
    d.recordRefill(2000);
    // 5 allocations per second for a minute.
    for (let t = 0; t <= 60_000; t += 200) d.recordAllocation(t);
    expect(d.rate(60_000)).toBeGreaterThan(4.5);
    expect(d.rate(60_000)).toBeLessThan(5.5);
    // 5/s x 2 s refill + 1 spare = 11, clamped to max 8.
    expect(d.target(60_000, { min: 1, max: 8, initial: 2 })).toBe(8);
    expect(d.target(60_000, { min: 1, max: 64, initial: 2 })).toBeGreaterThanOrEqual(10);
  });

  it('decays back to min when demand stops', () => {
    const d = new DemandTracker(10_000);
    d.recordRefill(1000);
    for (let t = 0; t <= 10_000; t += 100) d.recordAllocation(t);
    expect(d.target(10_000, { min: 1, max: 20, initial: 2 })).toBeGreaterThan(5);
    expect(d.target(200_000, { min: 1, max: 20, initial: 2 })).toBe(1);
  });
});
