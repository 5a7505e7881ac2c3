/**
 * The daemon's event stream (GET /v1/events, docs/events.md) as an async
 * iterable that survives dropped connections: it reconnects with
 * Last-Event-ID, so every event the daemon still holds is yielded exactly
 * once and in order; `gap` says how many it no longer held, `reset` that the
 * daemon restarted. The event shapes mirror src/events/bus.ts (a test keeps
 * them equal); the client does not import the daemon's modules.
 */
import { TfcError } from '../errors/index.js';
import { errorFor } from './errors.js';
import type { HttpCore } from './http.js';
import { readSse } from './sse.js';

/** Every event type the daemon publishes (`types` filters by these). */
export const DAEMON_EVENT_TYPES = ['vm.state', 'vm.ready', 'vm.failed', 'allocation', 'allocation.failed', 'release', 'pool', 'alert'] as const;
export type DaemonEventType = (typeof DAEMON_EVENT_TYPES)[number];

/** The payload of each type (docs/events.md). */
export interface DaemonEventPayloads {
  'vm.state': { vm_id: string; from: string; to: string; reason?: string };
  'vm.ready': { vm_id: string; profile: string; driver: string; kind: 'boot' | 'restore'; ms: number; phases: Array<{ name: string; ms: number }> };
  'vm.failed': { driver: string; code: string };
  allocation: { pool: string; vm_id: string; ms: number };
  'allocation.failed': { pool: string; code: string; ms: number };
  release: { pool: string; vm_id: string; reason: string };
  pool: { pool: string; ready: number; booting: number; allocated: number; target: number };
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

/** One event as the daemon sends it: its id (ordered, per daemon process), type, ISO time and payload. */
export type DaemonEvent = { [T in DaemonEventType]: { id: number; type: T; time: string; data: DaemonEventPayloads[T] } }[DaemonEventType];

/** What the iterator yields: events, and the two control events a consumer must know about. */
export type EventStreamItem =
  | DaemonEvent
  /** `missed` events after the last one seen were no longer held by the daemon (all types counted). */
  | { type: 'gap'; id: number; missed: number }
  /** The daemon restarted (the last id seen is beyond its last id): the stream continues after `last_id`. */
  | { type: 'reset'; id: number; last_id: number };

export interface EventsOptions {
  /** Only these types (default: all). */
  types?: readonly DaemonEventType[];
  /** Resume after this event id (0: everything the daemon still holds); absent: events from now on. */
  lastEventId?: number;
  /** Reconnects in a row without receiving anything before giving up with DAEMON_UNAVAILABLE (default 5). */
  maxReconnects?: number;
  /** Pause before each reconnect (default 500). */
  reconnectDelayMs?: number;
  /** Ends the iteration (the iterator rejects with the signal's reason). */
  signal?: AbortSignal;
}

const KNOWN: ReadonlySet<string> = new Set(DAEMON_EVENT_TYPES);

/**
 * Yields the daemon's events until `signal` aborts or the loop breaks (which
 * closes the connection); it never ends on its own. Throws the daemon's
 * typed error for a refused request (INVALID_ARGUMENT for an unknown type,
 * EVENT_STREAMS_EXHAUSTED, UNAUTHORIZED, NOT_FOUND from a server without
 * events) and DAEMON_UNAVAILABLE after `maxReconnects` failed connections
 * in a row. Unknown event types (a newer daemon) are skipped.
 */
export async function* followEvents(http: HttpCore, options: EventsOptions = {}): AsyncGenerator<EventStreamItem> {
  const maxReconnects = options.maxReconnects ?? 5;
  const pauseMs = options.reconnectDelayMs ?? 500;
  let lastId = options.lastEventId;
  let failures = 0;
  let lastError: unknown;
  for (;;) {
    try {
      const res = await http.send('GET', '/v1/events', {
        query: { types: options.types?.join(',') },
        headers: { accept: 'text/event-stream', ...(lastId !== undefined ? { 'last-event-id': String(lastId) } : {}) },
        extraTimeoutMs: null,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (!res.body) throw errorFor('DAEMON_UNAVAILABLE', `${http.baseUrl} answered the event stream without a body`);
      for await (const m of readSse(res.body)) {
        failures = 0;
        if (m.id !== undefined) lastId = m.id;
        const item = toItem(m.event, m.id, m.data);
        if (item) yield item;
      }
    } catch (err) {
      // The daemon's own answers are final; a cut connection is resumed.
      if (options.signal?.aborted) throw options.signal.reason ?? err;
      if (err instanceof TfcError && err.code !== 'DAEMON_UNAVAILABLE') throw err;
      lastError = err;
    }
    if (++failures > maxReconnects) {
      throw errorFor('DAEMON_UNAVAILABLE', `the event stream of ${http.baseUrl} kept failing (${maxReconnects} reconnects in a row); is the daemon running?`, {
        ...(lastError !== undefined ? { cause: lastError } : {}),
      });
    }
    await pause(pauseMs, options.signal);
  }
}

function toItem(type: string, id: number | undefined, raw: string): EventStreamItem | undefined {
  if (type === 'hello' || id === undefined) return undefined;
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    throw errorFor('DAEMON_UNAVAILABLE', `the daemon sent a ${type} event whose data is not JSON`);
  }
  if (type === 'gap') return { type, id, missed: Number(data.missed) };
  if (type === 'reset') return { type, id, last_id: Number(data.last_id) };
  return KNOWN.has(type) ? (data as unknown as DaemonEvent) : undefined;
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
