import { describe, expect, it } from 'vitest';
import { closest, editDistance } from './did-you-mean.js';

describe('did you mean', () => {
  it('measures edit distance', () => {
    expect(editDistance('accel', 'acel')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('suggests within 2 edits, case-insensitively, else nothing', () => {
    const keys = ['binary', 'accel', 'stop_timeout_ms'];
    expect(closest('acell', keys)).toBe('accel');
    expect(closest('Binary', keys)).toBe('binary');
    expect(closest('stop-timeout-ms', keys)).toBe('stop_timeout_ms');
    expect(closest('memory', keys)).toBeUndefined();
  });
});
