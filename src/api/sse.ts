/**
 * Server-Sent Events for process output: formatting of events (one JSON
 * object per `data:` line, so no payload can break the framing) and the
 * stream that follows one process record, pulling from its bounded log as
 * the socket drains. The log is the only buffer: a reader that falls behind
 * by more than the log keeps is sent a `gap` event, never an unbounded
 * backlog. Knows nothing about Fastify; writes to a Node ServerResponse.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { InvalidArgumentError } from '../errors/index.js';
import type { LoggedEvent, ProcessRecord } from '../processes/index.js';

export type SseEncoding = 'utf8' | 'base64';

/** Comment line sent every this often so proxies and clients see the connection alive. */
export const SSE_HEARTBEAT_MS = 15_000;

/**
 * Where a reconnecting client resumes: the `Last-Event-ID` header (what
 * EventSource sends), else the `last_event_id` query parameter (for clients
 * that cannot set headers); undefined when neither is given or both are
 * blank. Throws InvalidArgumentError for anything but a non-negative integer.
 */
export function lastEventIdOf(headers: IncomingHttpHeaders, queryValue: string | undefined): number | undefined {
  const header = headers['last-event-id'];
  const raw = (Array.isArray(header) ? header[0] : header) ?? queryValue;
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^[0-9]{1,15}$/.test(raw.trim()))
    throw new InvalidArgumentError(`Last-Event-ID must be a non-negative integer event id, got ${JSON.stringify(raw.slice(0, 32))}`, {
      details: { field: 'last_event_id' },
    });
  return Number(raw.trim());
}

/** Starts an event-stream answer on a response the framework no longer handles (Fastify: after `reply.hijack()`). */
export function startSseResponse(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  });
  res.flushHeaders();
}

/** One event: `id:`, `event:`, and the payload as one line of JSON. */
export function formatSseEvent(event: { id?: number; event: string; data: unknown }): string {
  // JSON.stringify never emits a raw newline (they are escaped), so one data line is always enough.
  return `${event.id !== undefined ? `id: ${event.id}\n` : ''}event: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

/** A comment line (ignored by clients): the heartbeat. */
export function formatSseComment(text: string): string {
  return `: ${text.replace(/[\r\n]/g, ' ')}\n\n`;
}

/**
 * Turns logged events into SSE text. utf8 output goes through one decoder
 * per stream and connection, so a character split across chunks arrives
 * whole; exact bytes need base64.
 */
export class SseEventFormatter {
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };

  constructor(private readonly encoding: SseEncoding) {}

  format(e: LoggedEvent): string {
    switch (e.type) {
      case 'stdout':
      case 'stderr':
        return formatSseEvent({
          id: e.id,
          event: e.type,
          data: { data: this.encoding === 'base64' ? e.data.toString('base64') : this.decoders[e.type].write(e.data) },
        });
      case 'exit': {
        // Bytes a decoder still holds (a character cut by the end of output) go out before the exit.
        const tail = this.encoding === 'utf8' ? (['stdout', 'stderr'] as const).map((s) => [s, this.decoders[s].end()] as const).filter(([, t]) => t) : [];
        return (
          tail.map(([s, t]) => formatSseEvent({ event: s, data: { data: t } })).join('') +
          formatSseEvent({ id: e.id, event: 'exit', data: { exit_code: e.exit.exitCode, signal: e.exit.signal, duration_ms: e.exit.durationMs } })
        );
      }
      case 'gap':
        return formatSseEvent({
          id: e.id,
          event: 'gap',
          data: { from_id: e.fromId, to_id: e.toId, lost_events: e.lostEvents, lost_bytes: e.lostBytes, exact: e.exact },
        });
    }
  }
}

export interface ProcessStreamOptions {
  /** Send only events after this id (Last-Event-ID); 0 = from the start. */
  afterId: number;
  encoding: SseEncoding;
  heartbeatMs?: number;
  /** Called once when the stream ends, however it ends. */
  onEnd?: () => void;
}

/**
 * Streams `record`'s events to `res` (headers already written) until the
 * exit event has been sent, then ends the response. Writes one batch (at
 * most what the log holds) and waits for `drain` before the next, so the
 * per-connection backlog is bounded by the log. A record that is dropped
 * (VM released) ends the stream with an `error` event. A client that goes
 * away stops everything.
 */
export function streamProcess(record: ProcessRecord, res: ServerResponse, options: ProcessStreamOptions): void {
  const formatter = new SseEventFormatter(options.encoding);
  let lastId = options.afterId;
  let waitingForDrain = false;
  let ended = false;
  const finish = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    unwatch();
    res.off('drain', onDrain);
    res.off('close', finish);
    options.onEnd?.();
  };
  const end = (text = '') => {
    if (ended) return;
    finish();
    if (!res.destroyed) res.end(text);
  };
  const pump = () => {
    if (ended || waitingForDrain) return;
    const events = record.after(lastId);
    let text = '';
    let sawExit = false;
    for (const e of events) {
      text += formatter.format(e);
      lastId = e.id;
      if (e.type === 'exit') sawExit = true;
    }
    if (sawExit) return end(text);
    if (record.gone !== undefined) {
      return end(text + formatSseEvent({ event: 'error', data: { code: 'PROCESS_NOT_FOUND', message: record.gone } }));
    }
    if (text && !res.write(text)) waitingForDrain = true;
  };
  const onDrain = () => {
    waitingForDrain = false;
    pump();
  };
  res.on('drain', onDrain);
  res.on('close', finish);
  const unwatch = record.watch(() => pump());
  const heartbeat = setInterval(() => {
    if (!waitingForDrain && !ended) res.write(formatSseComment('heartbeat'));
  }, options.heartbeatMs ?? SSE_HEARTBEAT_MS);
  heartbeat.unref();
  pump();
}
