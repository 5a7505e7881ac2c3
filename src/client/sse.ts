/**
 * A Server-Sent Events reader for the client: turns a fetch body into messages
 * (id, event, data). Lines are bounded (a daemon bug or a proxy cannot make
 * the client buffer without end); comments (heartbeats) are skipped.
 */
import { DaemonUnavailableError } from '../errors/index.js';

export interface SseMessage {
  id?: number;
  event: string;
  data: string;
}

/** Longest line accepted: a 1 MiB output chunk as base64 in JSON is about 1.4 MiB. */
export const MAX_SSE_LINE_BYTES = 4 * 1024 * 1024;

/** Yields the messages of an event stream until it ends. Throws DaemonUnavailableError for an overlong line. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffer = '';
  let id: number | undefined;
  let event = '';
  let data: string[] = [];
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (line === '') {
          if (data.length > 0 || event) yield { ...(id !== undefined ? { id } : {}), event: event || 'message', data: data.join('\n') };
          id = undefined;
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id' && /^[0-9]+$/.test(value)) id = Number(value);
        else if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (buffer.length > MAX_SSE_LINE_BYTES)
        throw new DaemonUnavailableError(`the daemon sent an event line longer than ${MAX_SSE_LINE_BYTES} bytes; is the URL a tfc daemon?`);
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
