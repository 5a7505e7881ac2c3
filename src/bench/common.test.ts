import { describe, expect, it } from 'vitest';
import { median, medianPhases, msThrough, percentile, sum } from './common.js';

// The statistics benchmark reports are built from.

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

describe('sum', () => {
  it('adds, 0 for none', () => {
    expect(sum([1, 2.5, 3])).toBe(6.5);
    expect(sum([])).toBe(0);
  });
});

describe('msThrough', () => {
  const phases = [
    { name: 'prepare', ms: 1 },
    { name: 'spawn_vmm', ms: 50 },
    { name: 'kernel', ms: 1500 },
    { name: 'agent_ready', ms: 300 },
  ];
  it('sums the phases up to and including the named one', () => {
    expect(msThrough(phases, 'kernel')).toBe(1551);
    expect(msThrough(phases, 'agent_ready')).toBe(1851);
  });
  it('names the phases there are when the one asked for is missing', () => {
    expect(() => msThrough(phases, 'resume')).toThrow('no phase "resume" among prepare, spawn_vmm, kernel, agent_ready');
  });
});

describe('medianPhases', () => {
  it('takes the median of each phase, in first-seen order, over the runs that have it', () => {
    const runs = [
      [
        { name: 'spawn_vmm', ms: 50 },
        { name: 'resume', ms: 1 },
      ],
      [
        { name: 'spawn_vmm', ms: 70 },
        { name: 'resume', ms: 3 },
        { name: 'network', ms: 9 },
      ],
      [
        { name: 'spawn_vmm', ms: 60 },
        { name: 'resume', ms: 2 },
      ],
    ];
    expect(medianPhases(runs)).toEqual([
      { name: 'spawn_vmm', ms: 60 },
      { name: 'resume', ms: 2 },
      { name: 'network', ms: 9 },
    ]);
    expect(medianPhases([])).toEqual([]);
  });
});
