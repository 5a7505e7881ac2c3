/**
 * The bounded event log of one process: stdout/stderr chunks and the exit,
 * numbered 1, 2, ... in arrival order. The oldest events are dropped when
 * the log holds more than `maxBytes` of output or `maxEvents` events, so a
 * chatty process costs at most that much daemon memory; a reader resuming
 * from a dropped id is told what it lost (a gap) instead of silently
 * skipping it. The exit event is never dropped.
 */

export type OutputStream = 'stdout' | 'stderr';

export interface ExitInfo {
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
}

export type LoggedEvent =
  | { id: number; type: OutputStream; data: Buffer }
  | { id: number; type: 'exit'; exit: ExitInfo }
  /** Events `fromId`..`toId` were dropped before this reader got them: `lostBytes` of output (a lower bound unless `exact`). */
  | { id: number; type: 'gap'; fromId: number; toId: number; lostEvents: number; lostBytes: number; exact: boolean };

export interface EventLogBounds {
  /** Output bytes kept (default 1 MiB). */
  maxBytes: number;
  /** Events kept (default 4096). */
  maxEvents: number;
}

export const DEFAULT_EVENT_LOG_BOUNDS: Readonly<EventLogBounds> = { maxBytes: 1024 * 1024, maxEvents: 4096 };

/** How many dropped events remember their byte offset, so a resume from one of them can say exactly how many bytes it lost. */
const DROPPED_OFFSETS_KEPT = 4096;

interface Entry {
  event: Exclude<LoggedEvent, { type: 'gap' }>;
  /** Output bytes of all events before this one (its start offset in the combined output). */
  startOffset: number;
}

export class ProcessEventLog {
  private readonly entries: Entry[] = [];
  private head = 0;
  private keptBytes = 0;
  private nextId = 1;
  private totalBytes = 0;
  /** End offsets of the most recently dropped events, by id (a bounded ring). */
  private readonly droppedEnds = new Map<number, number>();
  private exited = false;

  constructor(private readonly bounds: EventLogBounds = DEFAULT_EVENT_LOG_BOUNDS) {}

  /** The id the next event will get; the last id is `nextEventId - 1`. */
  get nextEventId(): number {
    return this.nextId;
  }

  /** Output bytes ever appended. */
  get outputBytes(): number {
    return this.totalBytes;
  }

  /** True once the exit event is in the log. */
  get hasExit(): boolean {
    return this.exited;
  }

  /** The oldest id still kept (nextEventId when empty). */
  get firstKeptId(): number {
    return this.head < this.entries.length ? this.entries[this.head].event.id : this.nextId;
  }

  /** Appends an output chunk; returns the event. Empty chunks are not logged (null). Output after the exit is ignored (null). */
  appendOutput(type: OutputStream, data: Buffer): LoggedEvent | null {
    if (data.length === 0 || this.exited) return null;
    const event = { id: this.nextId++, type, data } as const;
    this.entries.push({ event, startOffset: this.totalBytes });
    this.totalBytes += data.length;
    this.keptBytes += data.length;
    this.trim();
    return event;
  }

  /** Appends the exit; returns it (null when the exit was already logged). */
  appendExit(exit: ExitInfo): LoggedEvent | null {
    if (this.exited) return null;
    this.exited = true;
    const event = { id: this.nextId++, type: 'exit', exit } as const;
    this.entries.push({ event, startOffset: this.totalBytes });
    this.trim();
    return event;
  }

  /**
   * Events after `lastId` (0: from the start), in order, each once. When
   * some of them were dropped, the answer starts with one gap event (id:
   * the last lost id, so resuming from the gap's id continues after it).
   */
  after(lastId: number): LoggedEvent[] {
    const out: LoggedEvent[] = [];
    const first = this.firstKeptId;
    const from = Math.max(0, Math.floor(lastId));
    if (from + 1 < first) out.push(this.gap(from, first));
    for (let i = this.head; i < this.entries.length; i++) {
      const { event } = this.entries[i];
      if (event.id > from) out.push(event);
    }
    return out;
  }

  /** The gap for a reader at `lastId` when the oldest kept event is `firstKept`. */
  private gap(lastId: number, firstKept: number): LoggedEvent {
    const keptStart = this.head < this.entries.length ? this.entries[this.head].startOffset : this.totalBytes;
    // Where the reader's output ended: 0 at the start, else remembered for recently dropped ids.
    let readerEnd = lastId === 0 ? 0 : this.droppedEnds.get(lastId);
    let exact = readerEnd !== undefined;
    if (readerEnd === undefined) {
      // Older than every remembered offset: at least the bytes after the oldest remembered event were lost.
      const oldest = this.droppedEnds.keys().next();
      readerEnd = oldest.done ? keptStart : this.droppedEnds.get(oldest.value)!;
      exact = false;
    }
    return {
      id: firstKept - 1,
      type: 'gap',
      fromId: lastId + 1,
      toId: firstKept - 1,
      lostEvents: firstKept - 1 - lastId,
      lostBytes: Math.max(0, keptStart - readerEnd),
      exact,
    };
  }

  private trim(): void {
    while (this.entries.length - this.head > 1 && (this.keptBytes > this.bounds.maxBytes || this.entries.length - this.head > this.bounds.maxEvents)) {
      const oldest = this.entries[this.head];
      // The exit is the last event: the loop keeps at least one, so it is never dropped.
      if (oldest.event.type === 'exit') break;
      this.head += 1;
      const size = oldest.event.data.length;
      this.keptBytes -= size;
      this.droppedEnds.set(oldest.event.id, oldest.startOffset + size);
      if (this.droppedEnds.size > DROPPED_OFFSETS_KEPT) this.droppedEnds.delete(this.droppedEnds.keys().next().value as number);
    }
    // Compact now and then so the array does not grow with the process's lifetime output.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
  }
}
