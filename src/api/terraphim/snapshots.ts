/**
 * What the Terraphim layer needs of live snapshots for FcctlBridge's
 * snapshot and rollback calls, and its implementation over the daemon's
 * LiveSnapshotService (`ApiDeps.liveSnapshots`). With neither, those
 * routes answer 501 NOT_IMPLEMENTED.
 */
import type { ApiDeps } from '../deps.js';
import { allocatedVm } from '../vm-view.js';

export { NotImplementedError } from '../../errors/index.js';

export interface TerraphimSnapshots {
  /** Snapshots running VM `vmId` (it keeps running). Throws the core's errors (quota, unsupported driver...). */
  create(vmId: string): Promise<{ snapshotId: string }>;
  /** Rolls `vmId` back to `snapshotId` (same VM id). Throws SNAPSHOT_NOT_FOUND and the core's errors. */
  rollback(vmId: string, snapshotId: string): Promise<void>;
}

/**
 * Over the live-snapshot core. Snapshots are taken unnamed: the bridge
 * names them `agent-<id>-<unix seconds>`, which would collide within a
 * second and, named, outlive their VM; unnamed ones go with their VM.
 */
export function liveSnapshotsFor(deps: ApiDeps): TerraphimSnapshots | undefined {
  const live = deps.liveSnapshots;
  if (!live) return undefined;
  return {
    async create(vmId) {
      const record = await live.snapshot(allocatedVm(deps, vmId));
      return { snapshotId: record.id };
    },
    async rollback(vmId, snapshotId) {
      await live.rollback(allocatedVm(deps, vmId), snapshotId);
    },
  };
}
