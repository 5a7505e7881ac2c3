import { SnapshotQuotaExceededError } from '../../errors/index.js';

/** Limits on snapshots of running VMs (docs/snapshots.md). */
export interface LiveSnapshotQuota {
  /** Snapshots one VM may have at once. */
  perVm: number;
  /** Bytes all snapshot files may take together. */
  totalBytes: number;
}

export const DEFAULT_LIVE_SNAPSHOT_QUOTA: LiveSnapshotQuota = { perVm: 8, totalBytes: 16 * 1024 ** 3 };

/**
 * Throws SnapshotQuotaExceededError when one more snapshot of a VM that has
 * `usage.vmCount` would exceed the per-VM quota, or when the snapshots
 * already take `usage.totalBytes` at or above the total (a new snapshot's
 * size is not known until it is written; it is checked again afterwards).
 */
export function checkQuota(vmId: string, usage: { vmCount: number; totalBytes: number }, quota: LiveSnapshotQuota, adding = 0): void {
  if (usage.vmCount + 1 > quota.perVm) {
    throw new SnapshotQuotaExceededError(`VM ${vmId} already has ${usage.vmCount} snapshots (the limit is ${quota.perVm}); delete one first`, {
      details: { quota: 'per_vm', limit: quota.perVm, used: usage.vmCount },
    });
  }
  if (usage.totalBytes + adding > quota.totalBytes || (adding === 0 && usage.totalBytes >= quota.totalBytes)) {
    throw new SnapshotQuotaExceededError(
      `snapshots take ${usage.totalBytes + adding} bytes, over the total limit of ${quota.totalBytes} bytes; delete snapshots first`,
      { details: { quota: 'total_bytes', limit: quota.totalBytes, used: usage.totalBytes + adding } },
    );
  }
}
