export {
  LiveSnapshotService,
  liveSnapshotsDir,
  snapshotFiles,
  MAX_FORK_COUNT,
  MAX_SNAPSHOT_NAME_LENGTH,
  type LiveSnapshotServiceOptions,
} from './live-snapshots.js';
export { checkQuota, DEFAULT_LIVE_SNAPSHOT_QUOTA, type LiveSnapshotQuota } from './quota.js';
