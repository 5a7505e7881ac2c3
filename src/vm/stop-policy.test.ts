import { describe, expect, it } from 'vitest';
import { launchDrives } from './disks.js';
import { discardsStateOnStop } from './stop-policy.js';

const runDir = '/var/lib/tfc/run/vms/vm-1';

describe('discardsStateOnStop', () => {
  it('is true for a clone without disks, with a read-only root, and with a scratch disk in its run dir', () => {
    expect(discardsStateOnStop({ runDir })).toBe(true);
    expect(discardsStateOnStop({ runDir, drives: launchDrives('/var/lib/tfc/images/debian/rootfs.ext4', undefined) })).toBe(true);
    expect(discardsStateOnStop({ runDir, drives: launchDrives('/var/lib/tfc/images/debian/rootfs.ext4', `${runDir}/scratch.ext4`) })).toBe(true);
  });

  it('is false for a template whose RAM file becomes a golden snapshot', () => {
    expect(discardsStateOnStop({ runDir, snapshotMemoryPath: '/var/lib/tfc/snapshots/x/memory' })).toBe(false);
  });

  it('is false when a writable disk lives outside the run dir (it may be kept)', () => {
    expect(discardsStateOnStop({ runDir, drives: [{ id: 'scratch', path: '/var/lib/tfc/keep/scratch.ext4', readOnly: false }] })).toBe(false);
    // A sibling whose name starts like the run dir is outside it.
    expect(discardsStateOnStop({ runDir, drives: [{ id: 'scratch', path: `${runDir}-other/scratch.ext4`, readOnly: false }] })).toBe(false);
    expect(discardsStateOnStop({ runDir, drives: [{ id: 'scratch', path: `${runDir}/../vm-2/scratch.ext4`, readOnly: false }] })).toBe(false);
    // The run dir itself is not a file in it.
    expect(discardsStateOnStop({ runDir, drives: [{ id: 'scratch', path: runDir, readOnly: false }] })).toBe(false);
  });

  it('is false for a VM without a launch spec (never fully started)', () => {
    expect(discardsStateOnStop(undefined)).toBe(false);
  });
});
