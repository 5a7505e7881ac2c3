import { InvalidArgumentError } from '../errors/index.js';
import type { Db } from './database.js';
import { guardStore } from './store-error.js';

/** One execution through the Terraphim API (the Rust `CommandHistoryEntry`, camelCase). */
export interface TerraphimHistoryRecord {
  /** The execution id the response carried. */
  id: string;
  vmId: string;
  agentId: string;
  /** The program text, cut to `maxCommandBytes`. */
  command: string;
  language: string;
  /** The snapshot taken right after this execution, if any. */
  snapshotId: string | null;
  success: boolean;
  exitCode: number;
  /** Cut to `maxOutputBytes` each. */
  stdout: string;
  stderr: string;
  /** RFC 3339. */
  executedAt: string;
  durationMs: number;
}

/** How much history is kept; every value a positive integer. */
export interface TerraphimHistoryBounds {
  /** Entries per VM; the oldest go first (config `terraphim.history_max_entries`). */
  maxEntriesPerVm: number;
  /** VMs with history; the least recently written VM goes first (config `terraphim.history_max_vms`). */
  maxVms: number;
  /** UTF-8 bytes kept of stdout and of stderr of one entry. */
  maxOutputBytes: number;
  /** UTF-8 bytes kept of the command of one entry. */
  maxCommandBytes: number;
}

export interface TerraphimHistoryQuery {
  /** Keep only the most recent `limit` matching entries (0 = none); default all. */
  limit?: number;
  failuresOnly?: boolean;
  agentId?: string;
}

interface Row {
  id: string;
  vm_id: string;
  agent_id: string;
  command: string;
  language: string;
  snapshot_id: string | null;
  success: number;
  exit_code: number;
  stdout: string;
  stderr: string;
  executed_at: string;
  duration_ms: number;
}

function fromRow(r: Row): TerraphimHistoryRecord {
  return {
    id: r.id,
    vmId: r.vm_id,
    agentId: r.agent_id,
    command: r.command,
    language: r.language,
    snapshotId: r.snapshot_id,
    success: r.success !== 0,
    exitCode: r.exit_code,
    stdout: r.stdout,
    stderr: r.stderr,
    executedAt: r.executed_at,
    durationMs: r.duration_ms,
  };
}

const COLUMNS = 'id, vm_id, agent_id, command, language, snapshot_id, success, exit_code, stdout, stderr, executed_at, duration_ms';

/**
 * Rows of `terraphim_history` (migration 6): the command history of the
 * Terraphim API, per VM, bounded like `bounds` says after every write
 * (entries per VM, oldest dropped; VMs, least recently written dropped).
 * Order is insertion order (`seq`, never reused), not clock time. Knows
 * nothing about VMs' lives: callers delete a VM's rows when it is gone.
 * Every method throws STORE_ERROR when SQLite fails.
 */
export class TerraphimHistoryRepository {
  readonly bounds: Readonly<TerraphimHistoryBounds>;

  /** Trims rows already stored to `bounds` (they may have been lowered since). Throws InvalidArgumentError for a bound that is not a positive integer. */
  constructor(
    private readonly db: Db,
    bounds: TerraphimHistoryBounds,
  ) {
    for (const [key, value] of Object.entries(bounds)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError(`history bound ${key} must be a positive integer, not ${value}`);
    }
    this.bounds = { ...bounds };
    this.guard('trim the Terraphim history', () =>
      this.db.transaction(() => {
        this.db
          .prepare(
            `DELETE FROM terraphim_history WHERE seq IN (
               SELECT seq FROM (SELECT seq, ROW_NUMBER() OVER (PARTITION BY vm_id ORDER BY seq DESC) AS n FROM terraphim_history) WHERE n > ?)`,
          )
          .run(this.bounds.maxEntriesPerVm);
        this.trimVms();
      })(),
    );
  }

  /** True when rows outlive this process (a database file, not `:memory:`). */
  get persistent(): boolean {
    return !this.db.memory;
  }

  private guard<T>(operation: string, fn: () => T): T {
    return guardStore(operation, this.db.name, fn);
  }

  /** Drops the VMs beyond `maxVms`, least recently written first. */
  private trimVms(): void {
    this.db
      .prepare(
        `DELETE FROM terraphim_history WHERE vm_id IN (
           SELECT vm_id FROM terraphim_history GROUP BY vm_id ORDER BY MAX(seq) DESC LIMIT -1 OFFSET ?)`,
      )
      .run(this.bounds.maxVms);
  }

  /** Records `record` (command and output cut to the bounds), then drops what exceeds the bounds. */
  add(record: TerraphimHistoryRecord): void {
    const b = this.bounds;
    this.guard(`record an execution of VM ${record.vmId}`, () =>
      this.db.transaction(() => {
        const known = this.db.prepare('SELECT 1 FROM terraphim_history WHERE vm_id = ? LIMIT 1').get(record.vmId) !== undefined;
        this.db
          .prepare(`INSERT INTO terraphim_history (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
          .run(
            record.id,
            record.vmId,
            record.agentId,
            cutUtf8(record.command, b.maxCommandBytes),
            record.language,
            record.snapshotId,
            record.success ? 1 : 0,
            record.exitCode,
            cutUtf8(record.stdout, b.maxOutputBytes),
            cutUtf8(record.stderr, b.maxOutputBytes),
            record.executedAt,
            record.durationMs,
          );
        this.db
          .prepare(
            `DELETE FROM terraphim_history WHERE vm_id = ? AND seq <= (
               SELECT seq FROM terraphim_history WHERE vm_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)`,
          )
          .run(record.vmId, record.vmId, b.maxEntriesPerVm);
        // Only a VM new to the table can push the VM count over the bound.
        if (!known) this.trimVms();
      })(),
    );
  }

  /** Entries of `vmId` matching `q`, oldest first; `total` counts every match (before `limit`). */
  query(vmId: string, q: TerraphimHistoryQuery = {}): { entries: TerraphimHistoryRecord[]; total: number } {
    const where = ['vm_id = ?'];
    const params: Array<string | number> = [vmId];
    if (q.failuresOnly) where.push('success = 0');
    if (q.agentId !== undefined) {
      where.push('agent_id = ?');
      params.push(q.agentId);
    }
    const cond = where.join(' AND ');
    return this.guard(`read the Terraphim history of VM ${vmId}`, () => {
      const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM terraphim_history WHERE ${cond}`).get(...params) as { n: number }).n;
      if (q.limit === 0) return { entries: [], total };
      const rows =
        q.limit === undefined
          ? (this.db.prepare(`SELECT ${COLUMNS} FROM terraphim_history WHERE ${cond} ORDER BY seq`).all(...params) as Row[])
          : (this.db.prepare(`SELECT ${COLUMNS} FROM terraphim_history WHERE ${cond} ORDER BY seq DESC LIMIT ?`).all(...params, q.limit) as Row[]).reverse();
      return { entries: rows.map(fromRow), total };
    });
  }

  /** Sets `snapshotId` on the latest entry of `vmId` unless it has one. True when an entry changed. */
  attachSnapshot(vmId: string, snapshotId: string): boolean {
    return this.guard(`record snapshot ${snapshotId} in the Terraphim history of VM ${vmId}`, () => {
      const r = this.db
        .prepare(
          `UPDATE terraphim_history SET snapshot_id = ?
           WHERE seq = (SELECT MAX(seq) FROM terraphim_history WHERE vm_id = ?) AND snapshot_id IS NULL`,
        )
        .run(snapshotId, vmId);
      return r.changes > 0;
    });
  }

  /** Deletes every entry of `vmId`; returns how many. May be called for a VM without history. */
  deleteVm(vmId: string): number {
    return this.guard(`delete the Terraphim history of VM ${vmId}`, () => this.db.prepare('DELETE FROM terraphim_history WHERE vm_id = ?').run(vmId).changes);
  }

  /** The VMs with history (at most `maxVms`), most recently written first. */
  vmIds(): string[] {
    return this.guard('list the VMs with Terraphim history', () =>
      (this.db.prepare('SELECT vm_id FROM terraphim_history GROUP BY vm_id ORDER BY MAX(seq) DESC').all() as Array<{ vm_id: string }>).map((r) => r.vm_id),
    );
  }
}

/** `text` cut to at most `maxBytes` UTF-8 bytes, never splitting a character. */
export function cutUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const bytes = Buffer.from(text);
  let end = maxBytes;
  // Back off continuation bytes (10xxxxxx) to the start of the character the cut falls in.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
