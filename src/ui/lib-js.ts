/**
 * `/ui/lib.js`: the dashboard's pure helpers (no DOM, no network), an ES
 * module the page imports and the unit tests import too (from this same
 * text, through a data: URL), so what is tested is what the browser runs:
 * the Server-Sent Events parser, percentiles, bounded lists, the sparkline
 * geometry and the reconnect backoff.
 */
export const UI_LIB_JS = String.raw`// Pure helpers of the tfc dashboard: no DOM, no network (unit-tested in Node).

/** Longest unterminated line, and largest event, the SSE parser holds (bytes of text). */
export const MAX_SSE_BUFFER = 1 << 20;

/**
 * Incremental parser of a text/event-stream (the WHATWG "event stream
 * interpretation"): feed it decoded text as it arrives, in chunks cut
 * anywhere; it returns the events each chunk completes. Lines end in
 * CRLF, LF or CR; ":" lines are comments; "data" lines of one event are
 * joined with newlines; "id" persists across events as the id to resume
 * from; "retry" sets the reconnection delay. Throws a RangeError when a
 * line or an event grows past maxBuffer (the caller drops the connection).
 */
export class SseParser {
  constructor(maxBuffer = MAX_SSE_BUFFER) {
    this.maxBuffer = maxBuffer;
    this.buffer = '';
    this.data = [];
    this.dataLength = 0;
    this.type = '';
    /** The last id seen (the Last-Event-ID to resume from); '' before any. */
    this.lastEventId = '';
    /** The server's reconnection delay in ms, or null when it sent none. */
    this.retryMs = null;
  }

  /** Parses one more piece of text; returns the completed events: {id, type, data}. */
  push(text) {
    this.buffer += text;
    const events = [];
    const ends = /\r\n|\r|\n/g;
    let start = 0;
    for (let m = ends.exec(this.buffer); m; m = ends.exec(this.buffer)) {
      // A CR that ends the text may be the first half of a CRLF: wait for the next piece.
      if (m[0] === '\r' && m.index === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, m.index), events);
      start = m.index + m[0].length;
    }
    this.buffer = this.buffer.slice(start);
    if (this.buffer.length > this.maxBuffer) throw new RangeError('event stream line longer than ' + this.maxBuffer + ' characters');
    return events;
  }

  line(line, events) {
    if (line === '') {
      if (this.data.length > 0) events.push({ id: this.lastEventId, type: this.type || 'message', data: this.data.join('\n') });
      this.data = [];
      this.dataLength = 0;
      this.type = '';
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.dataLength += value.length + 1;
      if (this.dataLength > this.maxBuffer) throw new RangeError('event stream event larger than ' + this.maxBuffer + ' characters');
      this.data.push(value);
    } else if (field === 'event') this.type = value;
    else if (field === 'id') {
      if (!value.includes('\0')) this.lastEventId = value;
    } else if (field === 'retry' && /^[0-9]+$/.test(value)) this.retryMs = Number(value);
  }
}

/**
 * The daemon's event envelope {id, type, time, data} from one SSE event,
 * or null when its data is not such a JSON object (a foreign or broken
 * event is skipped, never trusted).
 */
export function decodeEvent(event) {
  let body;
  try {
    body = JSON.parse(event.data);
  } catch {
    return null;
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return null;
  const data = body.data !== null && typeof body.data === 'object' && !Array.isArray(body.data) ? body.data : {};
  return { id: String(body.id ?? event.id), type: String(body.type ?? event.type), time: typeof body.time === 'string' ? body.time : '', data };
}

/** The nearest-rank p-th percentile (0 < p <= 100) of finite numbers; null for none. */
export function percentile(values, p) {
  if (!(p > 0 && p <= 100)) throw new RangeError('percentile must be in (0, 100], got ' + p);
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  return sorted[Math.ceil((p / 100) * sorted.length) - 1];
}

/** Appends item and drops the oldest entries beyond max; returns the list. */
export function pushBounded(list, item, max) {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
  return list;
}

/** count, last, p50, p99 and max of a latency list (ms); nulls when it is empty. */
export function latencyStats(values) {
  const finite = values.filter((v) => Number.isFinite(v));
  return {
    count: finite.length,
    last: finite.length ? finite[finite.length - 1] : null,
    p50: percentile(finite, 50),
    p99: percentile(finite, 99),
    max: finite.length ? Math.max(...finite) : null,
  };
}

/**
 * The "points" of an SVG polyline drawing values left to right in a
 * width x height box, 0 at the bottom and the largest value at the top
 * (a 1 px margin keeps the stroke inside); '' for no values.
 */
export function sparklinePoints(values, width, height) {
  const finite = values.filter((v) => Number.isFinite(v) && v >= 0);
  if (finite.length === 0) return '';
  const top = Math.max(...finite) || 1;
  const step = finite.length > 1 ? (width - 2) / (finite.length - 1) : 0;
  const round = (n) => Math.round(n * 10) / 10;
  const points = finite.map((v, i) => round(1 + i * step) + ',' + round(height - 1 - (v / top) * (height - 2)));
  // One value: a flat line across the box rather than an invisible point.
  if (finite.length === 1) points.push(round(width - 1) + ',' + points[0].split(',')[1]);
  return points.join(' ');
}

/** Reconnect delay after the attempt-th failure in a row: base doubled, capped, with up to 50% jitter off. */
export function backoffMs(attempt, baseMs = 1000, maxMs = 30000, random = Math.random) {
  const full = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt, 30)));
  return Math.round(full * (1 - random() / 2));
}

/** A duration for people: "0.42 ms", "12.3 ms", "734 ms", "2.14 s"; "-" for none. */
export function formatMs(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '-';
  if (ms < 10) return ms.toFixed(2) + ' ms';
  if (ms < 100) return ms.toFixed(1) + ' ms';
  if (ms < 1000) return Math.round(ms) + ' ms';
  return (ms / 1000).toFixed(2) + ' s';
}
`;
