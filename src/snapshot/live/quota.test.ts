import { describe, expect, it } from 'vitest';
import { TfcError } from '../../errors/index.js';
import { checkQuota, DEFAULT_LIVE_SNAPSHOT_QUOTA } from './quota.js';

function thrown(fn: () => void): TfcError | undefined {
  try {
    fn();
  } catch (err) {
    return err as TfcError;
  }
  return undefined;
}

describe('live snapshot quotas', () => {
  const quota = { perVm: 2, totalBytes: 1000 };

  it('allows snapshots below both limits', () => {
    expect(() => checkQuota('vm-a', { vmCount: 0, totalBytes: 0 }, quota)).not.toThrow();
    expect(() => checkQuota('vm-a', { vmCount: 1, totalBytes: 999 }, quota)).not.toThrow();
    expect(() => checkQuota('vm-a', { vmCount: 0, totalBytes: 400 }, quota, 600)).not.toThrow();
  });

  it('refuses a snapshot over the per-VM count, saying which quota and its numbers', () => {
    const err = thrown(() => checkQuota('vm-a', { vmCount: 2, totalBytes: 0 }, quota));
    expect(err?.code).toBe('SNAPSHOT_QUOTA_EXCEEDED');
    expect(err?.status).toBe(409);
    expect(err?.details).toEqual({ quota: 'per_vm', limit: 2, used: 2 });
    expect(err?.message).toMatch(/vm-a already has 2 snapshots/);
  });

  it('refuses when the total is used up, and when a written snapshot would overflow it', () => {
    expect(thrown(() => checkQuota('vm-a', { vmCount: 0, totalBytes: 1000 }, quota))?.details).toEqual({ quota: 'total_bytes', limit: 1000, used: 1000 });
    expect(thrown(() => checkQuota('vm-a', { vmCount: 0, totalBytes: 400 }, quota, 601))?.details).toEqual({ quota: 'total_bytes', limit: 1000, used: 1001 });
  });

  it('defaults to 8 per VM and 16 GiB in total', () => {
    expect(DEFAULT_LIVE_SNAPSHOT_QUOTA).toEqual({ perVm: 8, totalBytes: 16 * 1024 ** 3 });
  });
});
