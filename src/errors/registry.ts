/**
 * The one table of error codes: every code tfc can report, with its HTTP
 * status. `docs/errors.md` documents each under its own anchor and
 * `registry.test.ts` keeps the two equal. A code, once published, never
 * changes meaning; add new codes here (and to the docs) only.
 *
 * This module must not import anything.
 */
export const ERROR_REGISTRY = {
  CONFIG_INVALID: { status: 400 },
  CONFIG_NOT_FOUND: { status: 400 },
  PROFILE_NOT_FOUND: { status: 404 },
  INVALID_ARGUMENT: { status: 400 },
  INVALID_STATE: { status: 409 },
  IMAGE_NOT_FOUND: { status: 404 },
  IMAGE_BUILD_FAILED: { status: 500 },
  PROCESS_FAILED: { status: 500 },
  VM_NOT_FOUND: { status: 404 },
  VMM_BINARY_NOT_FOUND: { status: 500 },
  VMM_SPAWN_FAILED: { status: 500 },
  VMM_EXITED: { status: 500 },
  VM_BOOT_TIMEOUT: { status: 504 },
  ACCEL_UNAVAILABLE: { status: 500 },
  QMP_ERROR: { status: 500 },
  QMP_TIMEOUT: { status: 504 },
  AGENT_ERROR: { status: 502 },
  GUEST_COMMAND_NOT_FOUND: { status: 422 },
  AGENT_TIMEOUT: { status: 504 },
  AGENT_DISCONNECTED: { status: 502 },
  AGENT_PROTOCOL: { status: 502 },
  SNAPSHOT_NOT_FOUND: { status: 404 },
  SNAPSHOT_WARMUP_FAILED: { status: 500 },
  SNAPSHOT_QUOTA_EXCEEDED: { status: 409 },
  SNAPSHOT_UNSUPPORTED: { status: 501 },
  POOL_NOT_FOUND: { status: 404 },
  POOL_EXHAUSTED: { status: 503 },
  UNAUTHORIZED: { status: 401 },
  DAEMON_UNAVAILABLE: { status: 503 },
  NETWORK_EXHAUSTED: { status: 503 },
  NETWORK_SETUP_FAILED: { status: 500 },
  NETWORK_UNAVAILABLE: { status: 500 },
  FIRECRACKER_API_ERROR: { status: 502 },
  FIRECRACKER_API_TIMEOUT: { status: 504 },
  NOT_FOUND: { status: 404 },
  PAYLOAD_TOO_LARGE: { status: 413 },
  URI_TOO_LONG: { status: 414 },
  UNSUPPORTED_MEDIA_TYPE: { status: 415 },
  REQUEST_TIMEOUT: { status: 408 },
  REQUEST_HEADERS_TOO_LARGE: { status: 431 },
  VM_BUSY: { status: 429 },
  INTERNAL: { status: 500 },
  STORE_ERROR: { status: 500 },
  PROCESS_NOT_FOUND: { status: 404 },
  NOT_IMPLEMENTED: { status: 501 },
  EVENT_STREAMS_EXHAUSTED: { status: 503 },
  CLUSTER_UNAVAILABLE: { status: 503 },
  NODE_LOST: { status: 503 },
  NODE_UNKNOWN: { status: 404 },
  NODE_UNREACHABLE: { status: 502 },
} as const satisfies Record<string, { status: number }>;

/** Every code tfc reports. */
export type ErrorCode = keyof typeof ERROR_REGISTRY;

/** True when `code` is in the registry (for codes read back from the API or the store). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERROR_REGISTRY, code);
}

/** The HTTP status the API answers with for `code`. */
export function statusOf(code: ErrorCode): number {
  return ERROR_REGISTRY[code].status;
}
