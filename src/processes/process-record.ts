import { ProcessEventLog, type EventLogBounds, type ExitInfo, type LoggedEvent, type OutputStream } from './event-log.js';

/** What a record tells its watchers: new events are in the log, or the record is gone (with why). */
export type RecordNotice = { type: 'events' } | { type: 'gone'; reason: string };

/**
 * One process started through the registry: what was run, its bounded
 * event log, its exit once known, and the watchers (output streams) to wake
 * when something is appended. Watchers pull from the log themselves, so a
 * slow watcher holds no copy of the output.
 */
export class ProcessRecord {
  readonly log: ProcessEventLog;
  readonly startedAt = new Date();
  private exitInfo?: ExitInfo;
  private goneReason?: string;
  private readonly watchers = new Set<(notice: RecordNotice) => void>();

  constructor(
    readonly pid: number,
    readonly argv: readonly string[],
    readonly pty: boolean,
    bounds?: EventLogBounds,
  ) {
    this.log = new ProcessEventLog(bounds);
  }

  get running(): boolean {
    return this.exitInfo === undefined && this.goneReason === undefined;
  }

  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** Why the record was dropped (VM released, record evicted), if it was. */
  get gone(): string | undefined {
    return this.goneReason;
  }

  appendOutput(type: OutputStream, data: Buffer): void {
    if (this.log.appendOutput(type, data)) this.notify({ type: 'events' });
  }

  appendExit(exit: ExitInfo): void {
    if (this.exitInfo) return;
    this.exitInfo = exit;
    if (this.log.appendExit(exit)) this.notify({ type: 'events' });
  }

  /** Events after `lastId` (see ProcessEventLog.after). */
  after(lastId: number): LoggedEvent[] {
    return this.log.after(lastId);
  }

  /** Marks the record gone and tells every watcher once. Idempotent. */
  drop(reason: string): void {
    if (this.goneReason !== undefined) return;
    this.goneReason = reason;
    this.notify({ type: 'gone', reason });
    this.watchers.clear();
  }

  /** Calls `watcher` on every notice until the returned function is called (or the record is gone). */
  watch(watcher: (notice: RecordNotice) => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  private notify(notice: RecordNotice): void {
    for (const w of [...this.watchers]) {
      try {
        w(notice);
      } catch {
        // one watcher's bug must not keep the others from hearing it
      }
    }
  }
}
