import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { base64Decode, base64EncodeInto, base64Length } from './base64.js';

describe('base64 between buffers', () => {
  it('matches Node for every length remainder and random content', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 6, 7, 100, 4095, 4096, 65_537]) {
      const data = randomBytes(n);
      const out = Buffer.alloc(base64Length(n) + 2, '#');
      expect(base64EncodeInto(data, out, 1)).toBe(base64Length(n));
      expect(out.subarray(1, 1 + base64Length(n)).toString()).toBe(data.toString('base64'));
      expect(out[0]).toBe(0x23); // nothing written outside its range
      expect(out[out.length - 1]).toBe(0x23);
      expect(base64Decode(Buffer.from(data.toString('base64')))!.equals(data)).toBe(true);
    }
  });

  it('refuses what is not strict base64 instead of guessing', () => {
    for (const bad of ['abc', 'ab=c', 'a===', '@@@@', 'YQ==YQ==', 'Y Q=', 'YQ\n=']) {
      expect(base64Decode(Buffer.from(bad))).toBeUndefined();
    }
    expect(base64Decode(Buffer.from(''))!.length).toBe(0);
  });
});
