import { describe, expect, it } from 'vitest';
import { parseMeminfo, vmsThatFit } from './memory.js';

// How many idle clones the density benchmark may start: never so many that
// the shared machine runs out of memory.

describe('parseMeminfo', () => {
  it('reads MemTotal and MemAvailable in MiB', () => {
    const text = 'MemTotal:       24683520 kB\nMemFree:        21553152 kB\nMemAvailable:   23862272 kB\nBuffers:          1 kB\n';
    expect(parseMeminfo(text)).toEqual({ totalMib: 24105, availableMib: 23303 });
  });

  it('names the missing field', () => {
    expect(() => parseMeminfo('MemTotal: 1024 kB\n')).toThrow('no MemAvailable in /proc/meminfo');
  });
});

describe('vmsThatFit', () => {
  it('keeps a fifth of the total (at least 1 GiB) for others', () => {
    // 24105 MiB total: reserve 4821; (23303 - 4821) / 64 = 288.8
    expect(vmsThatFit({ totalMib: 24105, availableMib: 23303 }, 64)).toBe(288);
    // small host: reserve 1024 MiB
    expect(vmsThatFit({ totalMib: 2048, availableMib: 1536 }, 100)).toBe(5);
  });

  it('is 0, never negative, when memory is short', () => {
    expect(vmsThatFit({ totalMib: 4096, availableMib: 500 }, 64)).toBe(0);
  });

  it('refuses a zero or negative estimate', () => {
    expect(() => vmsThatFit({ totalMib: 4096, availableMib: 4000 }, 0)).toThrow('must be positive');
  });
});
