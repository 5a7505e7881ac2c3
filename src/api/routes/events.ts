/**
 * GET /v1/events: the daemon's event bus (src/events) as Server-Sent Events
 * (docs/events.md). Each stream follows the bus from a cursor: live events
 * are written as they are published while the socket keeps up; once it
 * does not (write() said wait), nothing more is written until `drain`, and
 * then the stream catches up from the bus's ring, which is the only buffer.
 * A client that stays behind by more than the backlog bound is cut off (it
 * reconnects with Last-Event-ID and resumes from the ring). Streams are
 * bounded in number per app. Only translates HTTP: knows nothing about
 * VMs or pools.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { EVENT_TYPES, type BusEvent, type EventBus, type EventType } from '../../events/index.js';
import { InvalidArgumentError } from '../../errors/index.js';
import type { ApiDeps } from '../deps.js';
import { envelope } from '../errors.js';
import { ErrorBody } from '../schemas.js';
import { formatSseComment, formatSseEvent, lastEventIdOf as sseLastEventId, SSE_HEARTBEAT_MS, startSseResponse } from '../sse.js';

export interface EventStreamLimits {
  /** Event streams open at once per server; one more gets 503 EVENT_STREAMS_EXHAUSTED (default 64). */
  maxStreams: number;
  /** A stream whose socket does not drain is closed once more than this many bytes wait for it (default 1 MiB)... */
  maxBacklogBytes: number;
  /** ...or more than this many events (default 2048). */
  maxBacklogEvents: number;
  /** A comment line is sent this often so proxies and clients see the stream alive (default 15000). */
  heartbeatMs: number;
}

export const DEFAULT_EVENT_STREAM_LIMITS: EventStreamLimits = {
  maxStreams: 64,
  maxBacklogBytes: 1024 * 1024,
  maxBacklogEvents: 2048,
  heartbeatMs: SSE_HEARTBEAT_MS,
};

/** Types a request may name; `hello`, `gap` and `reset` are control events every stream gets. */
const TYPE_SET: ReadonlySet<string> = new Set(EVENT_TYPES);

const EventsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    types: { type: 'string', maxLength: 512, description: `comma-separated event types to send (default: all): ${EVENT_TYPES.join(', ')}` },
    last_event_id: {
      type: 'string',
      pattern: '^[0-9]{1,15}$',
      description: 'resume after this event id (as the Last-Event-ID header, for clients that cannot set headers)',
    },
  },
} as const;

// An event is formatted once, whichever of the (up to 64) streams sends it first; the ring keeps it alive.
const formatted = new WeakMap<BusEvent, string>();
function textOf(event: BusEvent): string {
  let text = formatted.get(event);
  if (text === undefined) {
    text = formatSseEvent({ id: event.id, event: event.type, data: event });
    formatted.set(event, text);
  }
  return text;
}

/**
 * The `types` query as a set (undefined: every type). Throws
 * InvalidArgumentError naming the valid types for an unknown or empty one.
 */
export function parseTypes(raw: string | undefined): ReadonlySet<EventType> | undefined {
  if (raw === undefined) return undefined;
  const names = raw.split(',').map((t) => t.trim());
  const unknown = names.filter((t) => !TYPE_SET.has(t));
  if (unknown.length > 0) {
    const shown = unknown.map((t) => (t === '' ? '""' : JSON.stringify(t.slice(0, 40)))).join(', ');
    throw new InvalidArgumentError(`types: unknown event type ${shown}; valid types: ${EVENT_TYPES.join(', ')} (comma-separated, no spaces needed)`, {
      details: { field: 'types', valid: [...EVENT_TYPES] },
    });
  }
  return new Set(names as EventType[]);
}

/** Last-Event-ID header, else ?last_event_id=, else undefined (follow live); see sse.ts. */
export function lastEventIdOf(req: FastifyRequest<{ Querystring: { last_event_id?: string } }>): number | undefined {
  return sseLastEventId(req.headers, req.query.last_event_id);
}

export interface EventStreamOptions extends Partial<Omit<EventStreamLimits, 'maxStreams'>> {
  /** Resume after this event id (replaying what the ring still holds); undefined: only events from now on. */
  afterId?: number;
  /** Send only these types (control events always go). */
  types?: ReadonlySet<EventType>;
  /** Called once when the stream ends, however it ends. */
  onEnd?: () => void;
  /** Called when the stream is closed because its client fell behind by more than the backlog bound. */
  onOverflow?: (backlog: { events: number; bytes: number }) => void;
}

export interface EventStream {
  /** Ends the stream (the response is ended, the bus listener removed). Idempotent. */
  end(): void;
}

/**
 * Streams `bus` to `res` (headers already written) until the client goes
 * away, `end()` is called or the client falls behind by more than the
 * backlog bound (then the response is destroyed: the client resumes with
 * Last-Event-ID). The first event says where the stream starts: `hello`
 * (no afterId: live from the bus's last id), `reset` (afterId is beyond the
 * bus's last id: another daemon process gave it out), or the replay of the
 * ring after afterId, preceded by `gap` when the ring no longer holds some.
 */
export function streamEvents(bus: EventBus, res: ServerResponse, options: EventStreamOptions = {}): EventStream {
  const maxBytes = options.maxBacklogBytes ?? DEFAULT_EVENT_STREAM_LIMITS.maxBacklogBytes;
  const maxEvents = options.maxBacklogEvents ?? DEFAULT_EVENT_STREAM_LIMITS.maxBacklogEvents;
  const types = options.types;
  const wanted = (e: BusEvent) => !types || types.has(e.type);
  // The id of the last bus event this stream has dealt with (sent or filtered out).
  let cursor: number;
  let waitingForDrain = false;
  let ended = false;
  // Events (and their bytes) published after the cursor that this stream still owes its client.
  let behindEvents = 0;
  let behindBytes = 0;

  const write = (text: string) => {
    if (!res.write(text)) waitingForDrain = true;
  };
  const finish = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    unsubscribe();
    res.off('drain', onDrain);
    res.off('close', finish);
    options.onEnd?.();
  };
  const end = () => {
    if (ended) return;
    finish();
    if (!res.destroyed) res.end();
  };
  const overflowIfBehind = () => {
    const bytes = behindBytes + res.writableLength;
    if (behindEvents <= maxEvents && bytes <= maxBytes) return;
    finish();
    options.onOverflow?.({ events: behindEvents, bytes });
    // Nothing more is sent: what the client has not read is still in the ring for its reconnect.
    res.destroy();
  };
  /** Sends what the ring holds after the cursor, until the socket says wait; counts the rest as owed. */
  const catchUp = () => {
    if (ended || waitingForDrain) return;
    if (cursor >= bus.lastId) {
      behindEvents = behindBytes = 0;
      return;
    }
    const { events, missed } = bus.since(cursor);
    if (missed > 0) {
      cursor += missed;
      write(formatSseEvent({ id: cursor, event: 'gap', data: { missed } }));
    }
    let i = 0;
    for (; i < events.length && !waitingForDrain; i++) {
      cursor = events[i].id;
      if (wanted(events[i])) write(textOf(events[i]));
    }
    behindEvents = behindBytes = 0;
    for (; i < events.length; i++) {
      if (!wanted(events[i])) continue;
      behindEvents += 1;
      behindBytes += Buffer.byteLength(textOf(events[i]));
    }
    overflowIfBehind();
  };
  const onEvent = (event: BusEvent) => {
    if (ended) return;
    if (waitingForDrain) {
      if (!wanted(event)) return;
      behindEvents += 1;
      behindBytes += Buffer.byteLength(textOf(event));
      return overflowIfBehind();
    }
    // Caught up: the event goes straight out (listeners run in publish order, so it is cursor + 1).
    if (event.id !== cursor + 1) return catchUp();
    cursor = event.id;
    if (wanted(event)) write(textOf(event));
  };
  const onDrain = () => {
    waitingForDrain = false;
    catchUp();
  };

  // Where the stream starts, and the subscription, in one synchronous turn: no event can fall between them.
  const afterId = options.afterId;
  if (afterId === undefined || afterId > bus.lastId) {
    cursor = bus.lastId;
    write(formatSseEvent({ id: cursor, event: afterId === undefined ? 'hello' : 'reset', data: { last_id: cursor } }));
  } else cursor = afterId;
  const unsubscribe = bus.subscribe(onEvent);
  res.on('drain', onDrain);
  res.on('close', finish);
  const heartbeat = setInterval(() => {
    if (!waitingForDrain && !ended) write(formatSseComment('heartbeat'));
  }, options.heartbeatMs ?? DEFAULT_EVENT_STREAM_LIMITS.heartbeatMs);
  heartbeat.unref();
  catchUp();
  return { end };
}

/** GET /v1/events. `limits` default to DEFAULT_EVENT_STREAM_LIMITS (tests lower them). */
export function eventRoutes(app: FastifyInstance, deps: ApiDeps, limits: EventStreamLimits = DEFAULT_EVENT_STREAM_LIMITS): void {
  const open = new Set<EventStream>();
  // Streams end now; the daemon's forceCloseConnections closes their sockets.
  app.addHook('onClose', async () => {
    for (const stream of [...open]) stream.end();
  });

  app.get<{ Querystring: { types?: string; last_event_id?: string } }>(
    '/v1/events',
    {
      schema: {
        summary:
          'Server-Sent Events of VM state changes, allocations, releases, pool counts and alerts (docs/events.md); resumable with Last-Event-ID; never ends',
        querystring: EventsQuery,
        response: { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 503: ErrorBody },
      },
    },
    async (req, reply) => {
      const bus = deps.events;
      if (!bus) {
        return reply
          .code(404)
          .send(envelope('NOT_FOUND', 'this server has no event stream (it was built without an event bus, ApiDeps.events); `tfc serve` has one').body);
      }
      const types = parseTypes(req.query.types);
      const afterId = lastEventIdOf(req);
      if (open.size >= limits.maxStreams) {
        const refused = envelope(
          'EVENT_STREAMS_EXHAUSTED',
          `${open.size} event streams are open, the most this daemon serves at once; close streams you no longer read, then retry`,
          { max: limits.maxStreams },
        );
        // Back-pressure, not a fault: sent here rather than thrown, so it is not logged as a server error.
        return reply.code(refused.status).header('retry-after', '5').send(refused.body);
      }
      // From here on the answer is the event stream; errors can no longer become an envelope.
      reply.hijack();
      const res = reply.raw;
      startSseResponse(res);
      const handle: EventStream = { end: () => undefined };
      open.add(handle);
      const stream = streamEvents(bus, res, {
        ...(afterId !== undefined ? { afterId } : {}),
        ...(types ? { types } : {}),
        maxBacklogBytes: limits.maxBacklogBytes,
        maxBacklogEvents: limits.maxBacklogEvents,
        heartbeatMs: limits.heartbeatMs,
        onEnd: () => open.delete(handle),
        onOverflow: ({ events, bytes }) =>
          deps.logger?.warn(
            { events, bytes },
            `event stream closed: its client fell ${events} events (${bytes} bytes) behind; it may resume with Last-Event-ID`,
          ),
      });
      handle.end = stream.end;
    },
  );
}
