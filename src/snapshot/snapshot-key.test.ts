import { describe, expect, it } from 'vitest';
import { snapshotKey, type SnapshotKeyInput } from './snapshot-key.js';

const base: SnapshotKeyInput = {
  profile: 'minimal',
  driver: 'qemu',
  driverVersion: '7.2.22',
  accel: 'tcg',
  imageDigest: 'abc',
  vcpus: 1,
  memoryMib: 256,
  kernelArgs: 'quiet',
};

describe('snapshotKey', () => {
  it('is stable and changes when any input changes', () => {
    expect(snapshotKey(base)).toBe(snapshotKey({ ...base }));
    for (const [k, v] of Object.entries({
      profile: 'other',
      driver: 'firecracker',
      driverVersion: '8.0',
      accel: 'kvm',
      imageDigest: 'def',
      vcpus: 2,
      memoryMib: 512,
      kernelArgs: 'quiet x',
    })) {
      expect(snapshotKey({ ...base, [k]: v })).not.toBe(snapshotKey(base));
    }
  });
});
