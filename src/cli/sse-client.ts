/** The CLI reads event streams with the client's reader (src/client/sse.ts). */
export { readSse, MAX_SSE_LINE_BYTES, type SseMessage } from '../client/sse.js';
