import { describe, expect, it } from 'vitest';
import { seededRandom, STRATEGIES, type Candidate, type StrategyState } from './strategies.js';

const c = (seq: number, readyLatencyMs: number, lastUsedAt: number): Candidate => ({ seq, readyLatencyMs, lastUsedAt, createdAt: seq });
const state = (seed = 1): StrategyState => ({ lastSeq: -1, random: seededRandom(seed) });
const ready = [c(3, 50, 300), c(1, 90, 100), c(2, 20, 50), c(4, 70, 10)];

describe('allocation strategies', () => {
  it('first-available takes the oldest ready VM', () => {
    expect(STRATEGIES['first-available'](ready, state()).seq).toBe(1);
  });
  it('best-performance takes the lowest measured readiness latency', () => {
    expect(STRATEGIES['best-performance'](ready, state()).seq).toBe(2);
  });
  it('least-recently-used takes the VM idle longest', () => {
    expect(STRATEGIES['least-recently-used'](ready, state()).seq).toBe(4);
  });
  it('round-robin cycles in creation order and wraps', () => {
    const s = state();
    const picks = Array.from({ length: 6 }, () => STRATEGIES['round-robin'](ready, s).seq);
    expect(picks).toEqual([1, 2, 3, 4, 1, 2]);
    // A VM that left the pool is skipped; the cycle continues after the last pick.
    expect(STRATEGIES['round-robin']([c(1, 1, 1), c(4, 1, 1)], s).seq).toBe(4);
  });
  it('weighted-random is reproducible per seed and favours fast VMs', () => {
    const pick = (seed: number) => {
      const s = state(seed);
      return Array.from({ length: 2000 }, () => STRATEGIES['weighted-random'](ready, s).seq);
    };
    expect(pick(7)).toEqual(pick(7));
    expect(pick(7)).not.toEqual(pick(8));
    const counts = new Map<number, number>();
    for (const seq of pick(7)) counts.set(seq, (counts.get(seq) ?? 0) + 1);
    // Weights 1/20 : 1/50 : 1/70 : 1/90 -> seq 2 about 48%, seq 1 about 11%.
    expect(counts.get(2)! / 2000).toBeGreaterThan(0.4);
    expect(counts.get(2)!).toBeGreaterThan(counts.get(3)!);
    expect(counts.get(3)!).toBeGreaterThan(counts.get(1)!);
    expect(counts.get(1)! / 2000).toBeGreaterThan(0.05);
  });
  it('seededRandom stays in [0, 1)', () => {
    const r = seededRandom(42);
    for (let i = 0; i < 1000; i++) {
      const x = r();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
  });
});
