export { LiveSnapshotService, liveSnapshotsDir, snapshotFiles, type LiveSnapshotServiceOptions } from './live-snapshots.js';
export {
  DEFAULT_DETACHED_LEASE_MS,
  MAX_DETACHED_LEASE_MS,
  MAX_FORK_COUNT,
  MAX_SNAPSHOT_NAME_LENGTH,
  SNAPSHOT_ID_PATTERN,
  SNAPSHOT_NAME_PATTERN,
} from './limits.js';
export { DetachedLeases } from './detached-leases.js';
export { checkQuota, DEFAULT_LIVE_SNAPSHOT_QUOTA, type LiveSnapshotQuota } from './quota.js';
