import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SNAPSHOT_FORMAT, snapshotKey, type SnapshotKeyInput } from './snapshot-key.js';

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
  it('orders the fields as the localeCompare version did, so existing golden snapshots keep their keys', () => {
    const full: SnapshotKeyInput = { ...base, warmup: ['python3', '-c', 'pass'], diskMib: 64 };
    const ordered = Object.fromEntries(Object.entries(full).sort(([a], [b]) => a.localeCompare(b)));
    const before = createHash('sha256')
      .update(JSON.stringify({ format: SNAPSHOT_FORMAT, ...ordered }))
      .digest('hex');
    expect(snapshotKey(full)).toBe(before);
  });

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
      warmup: ['python3', '-c', 'import json'],
      diskMib: 64,
    })) {
      expect(snapshotKey({ ...base, [k]: v })).not.toBe(snapshotKey(base));
    }
  });

  it('keeps the key of a profile without warmup or disk when those fields are absent', () => {
    // Snapshots made before warmup and disk_mib existed stay valid.
    expect(snapshotKey(base)).toBe('cd7e2218ccaad0b44c1a5835fbedad202f03fcca38069adf97ca7a2310a52a40');
    expect(snapshotKey({ ...base, warmup: ['a'] })).not.toBe(snapshotKey({ ...base, warmup: ['a', ''] }));
  });
});
