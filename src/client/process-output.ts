/**
 * A process's output as an async iterable of typed events that survives
 * dropped connections: it reconnects with Last-Event-ID, so every event is
 * yielded exactly once and in order (or a `gap` event says what the
 * daemon's bounded log no longer held). It ends after the `exit` event.
 */
import { isErrorCode, TfcError } from '../errors/index.js';
import { errorFor } from './errors.js';
import type { HttpCore } from './http.js';
import { readSse } from './sse.js';
import type { OutputEncoding, ProcessEvent } from './types.js';

export interface OutputOptions {
  /** Start after this event id (0 or absent: from the first event the daemon still holds). */
  lastEventId?: number;
  /** utf8 (default): `data` is text; base64: `data` is the exact bytes, base64-encoded. */
  encoding?: OutputEncoding;
  /** Reconnects in a row without receiving an event before giving up with DAEMON_UNAVAILABLE (default 5). */
  maxReconnects?: number;
  /** Pause before each reconnect (default 200). */
  reconnectDelayMs?: number;
  /** Ends the iteration (the iterator rejects with the signal's reason). */
  signal?: AbortSignal;
}

/**
 * Yields the events of process `pid` in VM `vmId`. Throws the daemon's
 * typed error (PROCESS_NOT_FOUND, VM_NOT_FOUND; also as an `error` event
 * when the VM goes away mid-stream) and DAEMON_UNAVAILABLE after
 * `maxReconnects` dropped connections in a row. Each iteration opens its
 * own connection; breaking out of the loop closes it.
 */
export async function* processOutput(http: HttpCore, vmId: string, pid: number, options: OutputOptions = {}): AsyncGenerator<ProcessEvent> {
  const maxReconnects = options.maxReconnects ?? 5;
  const pauseMs = options.reconnectDelayMs ?? 200;
  const path = `/v1/vms/${encodeURIComponent(vmId)}/processes/${pid}/output`;
  let lastId = options.lastEventId ?? 0;
  let failures = 0;
  let lastError: unknown;
  for (;;) {
    try {
      const res = await http.send('GET', path, {
        query: { encoding: options.encoding },
        headers: { accept: 'text/event-stream', ...(lastId > 0 ? { 'last-event-id': String(lastId) } : {}) },
        extraTimeoutMs: null,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (!res.body) throw errorFor('DAEMON_UNAVAILABLE', `${http.baseUrl} answered the output stream without a body`);
      for await (const m of readSse(res.body)) {
        failures = 0;
        if (m.id !== undefined) lastId = m.id;
        const event = toEvent(m.event, m.id, m.data);
        if (event) yield event;
        if (event?.type === 'exit') return;
      }
    } catch (err) {
      // The daemon's own answers (unknown process, VM gone) are final; a cut connection is resumed.
      if (options.signal?.aborted || (err instanceof TfcError && err.code !== 'DAEMON_UNAVAILABLE')) throw err;
      lastError = err;
    }
    if (++failures > maxReconnects) {
      throw errorFor('DAEMON_UNAVAILABLE', `the output stream of process ${pid} kept ending before the process exited (${maxReconnects} reconnects)`, {
        ...(lastError !== undefined ? { cause: lastError } : {}),
      });
    }
    await new Promise((r) => setTimeout(r, pauseMs));
  }
}

/** One SSE message as a typed event; an `error` event throws; unknown events (a newer daemon) are skipped. */
function toEvent(type: string, id: number | undefined, raw: string): ProcessEvent | undefined {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    throw errorFor('DAEMON_UNAVAILABLE', `the daemon sent a ${type} event whose data is not JSON`);
  }
  const withId = id === undefined ? {} : { id };
  switch (type) {
    case 'stdout':
    case 'stderr':
      return { type, ...withId, data: String(data.data) };
    case 'gap':
      return {
        type,
        ...withId,
        from_id: Number(data.from_id),
        to_id: Number(data.to_id),
        lost_events: Number(data.lost_events),
        lost_bytes: Number(data.lost_bytes),
        exact: data.exact === true,
      };
    case 'exit':
      return {
        type,
        ...withId,
        exit_code: typeof data.exit_code === 'number' ? data.exit_code : null,
        signal: typeof data.signal === 'string' ? data.signal : null,
        duration_ms: Number(data.duration_ms),
      };
    case 'error': {
      const code = isErrorCode(data.code) ? data.code : 'INTERNAL';
      throw errorFor(code, String(data.message), isErrorCode(data.code) ? {} : { details: { remote_code: data.code } });
    }
    default:
      return undefined;
  }
}
