import { afterEach, describe, expect, it } from 'vitest';
import { intArg, median, percentile } from './common.js';

// The statistics and flags benchmark reports are built from.

describe('benchmark statistics', () => {
  it('median of odd and even counts, regardless of order', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });

  it('percentile is nearest-rank: p50 of 1..10 is 5, p99 and p100 the maximum, p0 the minimum', () => {
    const v = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
    expect(percentile(v, 50)).toBe(5);
    expect(percentile(v, 90)).toBe(9);
    expect(percentile(v, 99)).toBe(10);
    expect(percentile(v, 100)).toBe(10);
    expect(percentile(v, 0)).toBe(1);
  });

  it("does not reorder the caller's samples", () => {
    const v = [3, 1, 2];
    median(v);
    percentile(v, 50);
    expect(v).toEqual([3, 1, 2]);
  });
});

describe('intArg', () => {
  const argv = process.argv;
  afterEach(() => {
    process.argv = argv;
  });

  it('reads --name N, or the fallback when absent', () => {
    process.argv = ['node', 'bench', '--runs', '7'];
    expect(intArg('runs', 3)).toBe(7);
    expect(intArg('warmup', 2)).toBe(2);
  });

  it('refuses zero, negatives, fractions and a missing value with the flag name', () => {
    for (const bad of [['--runs', '0'], ['--runs', '-1'], ['--runs', '1.5'], ['--runs']]) {
      process.argv = ['node', 'bench', ...bad];
      expect(() => intArg('runs', 3)).toThrow('--runs must be a positive integer');
    }
  });
});
