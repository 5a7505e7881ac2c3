/**
 * Per-VM command history for GET /api/vms/{id}/history (the history the
 * Rust FcctlBridge queries): every execution through /api/llm/* is
 * recorded. A thin layer over the store's TerraphimHistoryRepository
 * (SQLite table `terraphim_history`), which keeps it bounded per VM
 * (oldest dropped) and in VMs (least recently written VM dropped) and, on
 * the daemon's database, across restarts; this class only maps the Rust
 * field names. When rows go (their VM is destroyed) is the routes' call.
 */
import { openDatabase, TerraphimHistoryRepository, type Db, type TerraphimHistoryBounds, type TerraphimHistoryRecord } from '../../store/index.js';
import { TERRAPHIM_LIMITS, type CommandHistoryEntry } from './models.js';

export interface HistoryQuery {
  limit?: number;
  failuresOnly?: boolean;
  agentId?: string;
}

/** The bounds of TERRAPHIM_LIMITS (config `[terraphim]` defaults). */
export const DEFAULT_HISTORY_BOUNDS: Readonly<TerraphimHistoryBounds> = {
  maxEntriesPerVm: TERRAPHIM_LIMITS.maxHistoryEntries,
  maxVms: TERRAPHIM_LIMITS.maxHistoryVms,
  maxOutputBytes: TERRAPHIM_LIMITS.maxHistoryOutputBytes,
  maxCommandBytes: TERRAPHIM_LIMITS.maxHistoryCommandBytes,
};

export class ExecutionHistory {
  constructor(private readonly store: TerraphimHistoryRepository) {}

  /**
   * A history in a private in-memory SQLite database (lost with the
   * process), for an API built without the daemon's store; `close()`
   * closes that database.
   */
  static inMemory(bounds: TerraphimHistoryBounds = DEFAULT_HISTORY_BOUNDS): { history: ExecutionHistory; close(): void } {
    const db: Db = openDatabase(':memory:');
    return { history: new ExecutionHistory(new TerraphimHistoryRepository(db, bounds)), close: () => db.close() };
  }

  /** Entries kept per VM (HistoryConfig max_history_entries). */
  get maxEntries(): number {
    return this.store.bounds.maxEntriesPerVm;
  }

  /** True when the history outlives the process (HistoryConfig persist_history). */
  get persistent(): boolean {
    return this.store.persistent;
  }

  /** Records `entry` (command and output cut to the per-entry bounds). Throws STORE_ERROR. */
  add(entry: CommandHistoryEntry): void {
    this.store.add({
      id: entry.id,
      vmId: entry.vm_id,
      agentId: entry.agent_id,
      command: entry.command,
      language: entry.language,
      snapshotId: entry.snapshot_id,
      success: entry.success,
      exitCode: entry.exit_code,
      stdout: entry.stdout,
      stderr: entry.stderr,
      executedAt: entry.executed_at,
      durationMs: entry.duration_ms,
    });
  }

  /** Entries of `vmId` matching the filter, oldest first; `limit` keeps the most recent ones. `total` counts all matches. Throws STORE_ERROR. */
  query(vmId: string, q: HistoryQuery = {}): { entries: CommandHistoryEntry[]; total: number } {
    const { entries, total } = this.store.query(vmId, q);
    return { entries: entries.map(toEntry), total };
  }

  /** Marks the latest entry of `vmId` as the one `snapshotId` was taken after (the bridge snapshots right after an execution), unless it has one. */
  attachSnapshot(vmId: string, snapshotId: string): void {
    this.store.attachSnapshot(vmId, snapshotId);
  }

  /** Forgets `vmId` (its VM is gone). */
  drop(vmId: string): void {
    this.store.deleteVm(vmId);
  }

  /** VMs with history, most recently written first. */
  vmIds(): string[] {
    return this.store.vmIds();
  }
}

function toEntry(r: TerraphimHistoryRecord): CommandHistoryEntry {
  return {
    id: r.id,
    vm_id: r.vmId,
    agent_id: r.agentId,
    command: r.command,
    language: r.language,
    snapshot_id: r.snapshotId,
    success: r.success,
    exit_code: r.exitCode,
    stdout: r.stdout,
    stderr: r.stderr,
    executed_at: r.executedAt,
    duration_ms: r.durationMs,
  };
}
