/**
 * The daemon's event bus: one ordered stream of what happened (VM state
 * transitions, allocations, releases, pool changes, alert changes). Every
 * event gets the next id (1, 2, ...) of this daemon process; the last
 * `capacity` events are kept in a ring so an SSE client reconnecting with
 * `Last-Event-ID` resumes without loss, and one that fell further behind is
 * told how many it missed. Listeners are called synchronously and must not
 * throw (a throwing listener is dropped from that one call, never from the
 * bus); they must not block: queue and return.
 */

/** Every event type; `GET /v1/events?types=` and webhooks filter by these. */
export const EVENT_TYPES = ['vm.state', 'vm.ready', 'vm.failed', 'allocation', 'allocation.failed', 'release', 'pool', 'alert'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** The payload of each type (snake_case: it is sent as JSON as it is). */
export interface EventPayloads {
  /** A VM's state machine moved (`creating` -> `booting` -> `running` ...). */
  'vm.state': { vm_id: string; from: string; to: string; reason?: string };
  /** A boot or restore finished with a ready agent. */
  'vm.ready': { vm_id: string; profile: string; driver: string; kind: 'boot' | 'restore'; ms: number; phases: Array<{ name: string; ms: number }> };
  /** A boot or restore failed. */
  'vm.failed': { driver: string; code: string };
  /** A VM was handed out from a pool. */
  allocation: { pool: string; vm_id: string; ms: number };
  /** An allocation request failed (POOL_EXHAUSTED, ...). */
  'allocation.failed': { pool: string; code: string; ms: number };
  /** An allocated VM was given back (released or its lease expired). */
  release: { pool: string; vm_id: string; reason: string };
  /** A pool's counts changed. */
  pool: { pool: string; ready: number; booting: number; allocated: number; target: number };
  /** An alert changed state (pending, firing, resolved). */
  alert: {
    id: string;
    rule: string;
    state: 'pending' | 'firing' | 'resolved';
    labels: Record<string, string>;
    value: number;
    threshold: number;
    summary: string;
    since: string;
  };
}

export interface BusEvent<T extends EventType = EventType> {
  id: number;
  type: T;
  /** ISO 8601 time the event was published. */
  time: string;
  data: EventPayloads[T];
}

export type EventListener = (event: BusEvent) => void;

/** Default ring size: about a minute of a busy daemon's events. */
export const DEFAULT_EVENT_BUFFER = 4096;

export interface ReplayResult {
  /** Events after the given id that are still kept, oldest first. */
  events: BusEvent[];
  /** Events after the given id that are no longer kept (0 when none were lost). */
  missed: number;
}

export class EventBus {
  private readonly ring: BusEvent[] = [];
  private head = 0;
  private nextId = 1;
  private readonly listeners = new Set<EventListener>();

  constructor(readonly capacity: number = DEFAULT_EVENT_BUFFER) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`event buffer capacity must be a positive integer, got ${capacity}`);
  }

  publish<T extends EventType>(type: T, data: EventPayloads[T]): BusEvent<T> {
    const event: BusEvent<T> = { id: this.nextId++, type, time: new Date().toISOString(), data };
    if (this.ring.length < this.capacity) this.ring.push(event);
    else {
      this.ring[this.head] = event;
      this.head = (this.head + 1) % this.capacity;
    }
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A listener's fault is its own: the bus and other listeners go on.
      }
    }
    return event;
  }

  /** Calls `listener` for every event published from now on; returns the unsubscribe function. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The id the last published event got (0 before any). */
  get lastId(): number {
    return this.nextId - 1;
  }

  /** Kept events with id > `afterId`, oldest first, and how many after it were dropped from the ring. */
  since(afterId: number): ReplayResult {
    const ordered = this.ring.length < this.capacity ? this.ring : [...this.ring.slice(this.head), ...this.ring.slice(0, this.head)];
    const events = ordered.filter((e) => e.id > afterId);
    const oldestKept = ordered.length > 0 ? ordered[0].id : this.nextId;
    const missed = Math.max(0, Math.min(oldestKept, this.nextId) - 1 - Math.max(afterId, 0));
    return { events, missed };
  }

  get listenerCount(): number {
    return this.listeners.size;
  }
}
