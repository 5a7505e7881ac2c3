/**
 * Store: the embedded SQLite database (better-sqlite3, WAL) and its
 * repositories, plus the data-dir layout. Records every VM, its state
 * transitions and its phase timings, live snapshots, and the Terraphim
 * API's command history. Knows nothing about VMMs or HTTP.
 */
export { openDatabase, type Db } from './database.js';
export { VmRepository, type VmRecord, type PhaseRecord, type TransitionRecord } from './vm-repository.js';
export { dataLayout, type DataLayout } from './layout.js';
export { toStoreError, guardStore, storeHint } from './store-error.js';
export { LiveSnapshotRepository, type LiveSnapshotRecord, type LiveSnapshotMeta, type LiveSnapshotFileSet } from './live-snapshot-repository.js';
export {
  TerraphimHistoryRepository,
  type TerraphimHistoryBounds,
  type TerraphimHistoryQuery,
  type TerraphimHistoryRecord,
} from './terraphim-history-repository.js';
export {
  AlertRepository,
  DEFAULT_ALERT_RETENTION,
  type AlertRecord,
  type AlertRetention,
  type AlertStateFilter,
  type DeliveryRecord,
} from './alert-repository.js';
