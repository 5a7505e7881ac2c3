/**
 * The typed TypeScript client of the tfc daemon's REST API, published as
 * `terraphim-firecracker/client` (docs/client.md). It owns HTTP to the
 * daemon (auth, timeouts, safe retries, typed errors, resumable output
 * streams); it must not import anything that runs VMs, so a program that
 * only talks to a daemon loads no VMM code.
 */
export { TfcClient, DEFAULT_DOWNLOAD_BUFFER_BYTES, type UploadSource } from './client.js';
export { HttpCore, DEFAULT_RETRY, retryDelay, type RetryPolicy, type TfcClientOptions, type RequestOptions } from './http.js';
export type { OutputOptions } from './process-output.js';
export { DAEMON_EVENT_TYPES, type DaemonEvent, type DaemonEventType, type DaemonEventPayloads, type EventStreamItem, type EventsOptions } from './events.js';
export { readSse, MAX_SSE_LINE_BYTES, type SseMessage } from './sse.js';
export { errorFor } from './errors.js';
export * from './types.js';
export {
  TfcError,
  isErrorCode,
  hasCode,
  type ErrorCode,
  AgentError,
  AgentTimeoutError,
  DaemonUnavailableError,
  GuestCommandNotFoundError,
  InvalidArgumentError,
  InvalidStateError,
  NotFoundError,
  PayloadTooLargeError,
  PoolExhaustedError,
  PoolNotFoundError,
  ProcessNotFoundError,
  SnapshotNotFoundError,
  UnauthorizedError,
  VmBusyError,
  VmNotFoundError,
} from '../errors/index.js';
