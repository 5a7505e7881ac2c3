/**
 * Per-VM command history for GET /api/vms/{id}/history (the history the
 * Rust FcctlBridge queries): every execution through /api/llm/* is
 * recorded, in memory only, bounded per VM (oldest dropped) and in VMs
 * (least recently written VM dropped). Lost when the daemon restarts.
 */
import type { CommandHistoryEntry } from './models.js';

export interface HistoryQuery {
  limit?: number;
  failuresOnly?: boolean;
  agentId?: string;
}

export class ExecutionHistory {
  private readonly byVm = new Map<string, CommandHistoryEntry[]>();

  constructor(
    private readonly maxEntries: number,
    private readonly maxVms: number,
    private readonly maxOutputBytes: number,
  ) {}

  /** Records `entry` (its output cut to the per-entry bound). May be called any number of times. */
  add(entry: CommandHistoryEntry): void {
    const list = this.byVm.get(entry.vm_id) ?? [];
    // Re-insert: Map order is the LRU order.
    this.byVm.delete(entry.vm_id);
    this.byVm.set(entry.vm_id, list);
    list.push({ ...entry, stdout: cut(entry.stdout, this.maxOutputBytes), stderr: cut(entry.stderr, this.maxOutputBytes) });
    if (list.length > this.maxEntries) list.splice(0, list.length - this.maxEntries);
    while (this.byVm.size > this.maxVms) this.byVm.delete(this.byVm.keys().next().value!);
  }

  /** Entries of `vmId` matching the filter, oldest first; `limit` keeps the most recent ones. `total` counts all matches. */
  query(vmId: string, q: HistoryQuery = {}): { entries: CommandHistoryEntry[]; total: number } {
    const matching = (this.byVm.get(vmId) ?? []).filter((e) => (!q.failuresOnly || !e.success) && (q.agentId === undefined || e.agent_id === q.agentId));
    const entries = q.limit === undefined ? matching : q.limit === 0 ? [] : matching.slice(-q.limit);
    return { entries, total: matching.length };
  }

  /** Marks the latest entry of `vmId` as the one `snapshotId` was taken after (the bridge snapshots right after an execution), unless it has one. */
  attachSnapshot(vmId: string, snapshotId: string): void {
    const last = this.byVm.get(vmId)?.at(-1);
    if (last && last.snapshot_id === null) last.snapshot_id = snapshotId;
  }

  /** Forgets `vmId` (its VM is gone). */
  drop(vmId: string): void {
    this.byVm.delete(vmId);
  }
}

/** `text` cut to at most `maxBytes` UTF-8 bytes (never splitting a character). */
function cut(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  return Buffer.from(text)
    .subarray(0, maxBytes)
    .toString('utf8')
    .replace(/\uFFFD$/, '');
}
