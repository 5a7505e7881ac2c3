/**
 * Errors: the one base class every module throws, with a stable `code`, an
 * HTTP `status` (used only by the API layer's single mapping function), an
 * optional `cause` and `details`. Codes and their statuses live in one table
 * (`registry.ts`); docs/errors.md documents each (a test keeps them equal).
 * A code, once published, never changes meaning.
 *
 * This module must not import anything from the rest of the project.
 */

import { ERROR_REGISTRY, type ErrorCode } from './registry.js';

export { ERROR_REGISTRY, isErrorCode, statusOf, type ErrorCode } from './registry.js';

export interface TfcErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
  /** Overrides the registry's status (only for errors read back from a remote API answer). */
  status?: number;
}

export class TfcError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: TfcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TfcError';
    this.code = code;
    this.status = options.status ?? ERROR_REGISTRY[code].status;
    if (options.details) this.details = options.details;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** Helper to declare an error kind with a fixed code (its status comes from the registry). */
function kind<C extends ErrorCode>(code: C) {
  return class extends TfcError {
    static readonly code: C = code;
    constructor(message: string, options: Omit<TfcErrorOptions, 'status'> = {}) {
      super(code, message, options);
    }
  };
}

export const ConfigInvalidError = kind('CONFIG_INVALID');
export const ConfigNotFoundError = kind('CONFIG_NOT_FOUND');
export const InvalidStateError = kind('INVALID_STATE');
export const InvalidArgumentError = kind('INVALID_ARGUMENT');
export const ProfileNotFoundError = kind('PROFILE_NOT_FOUND');
export const ImageNotFoundError = kind('IMAGE_NOT_FOUND');
export const ImageBuildFailedError = kind('IMAGE_BUILD_FAILED');
export const VmNotFoundError = kind('VM_NOT_FOUND');
export const VmmBinaryNotFoundError = kind('VMM_BINARY_NOT_FOUND');
export const VmmSpawnFailedError = kind('VMM_SPAWN_FAILED');
export const VmmExitedError = kind('VMM_EXITED');
export const VmBootTimeoutError = kind('VM_BOOT_TIMEOUT');
export const SnapshotWarmupFailedError = kind('SNAPSHOT_WARMUP_FAILED');
export const QmpError = kind('QMP_ERROR');
export const QmpTimeoutError = kind('QMP_TIMEOUT');
export const AgentError = kind('AGENT_ERROR');
export const AgentTimeoutError = kind('AGENT_TIMEOUT');
export const AgentDisconnectedError = kind('AGENT_DISCONNECTED');
export const AgentProtocolError = kind('AGENT_PROTOCOL');
export const GuestCommandNotFoundError = kind('GUEST_COMMAND_NOT_FOUND');
export const ProcessFailedError = kind('PROCESS_FAILED');
export const StoreError = kind('STORE_ERROR');
export const AccelUnavailableError = kind('ACCEL_UNAVAILABLE');
export const SnapshotNotFoundError = kind('SNAPSHOT_NOT_FOUND');
export const SnapshotQuotaExceededError = kind('SNAPSHOT_QUOTA_EXCEEDED');
export const SnapshotUnsupportedError = kind('SNAPSHOT_UNSUPPORTED');
export const PoolNotFoundError = kind('POOL_NOT_FOUND');
export const PoolExhaustedError = kind('POOL_EXHAUSTED');
export const UnauthorizedError = kind('UNAUTHORIZED');
export const DaemonUnavailableError = kind('DAEMON_UNAVAILABLE');

/** True when `err` is a TfcError carrying `code`. */
export function hasCode(err: unknown, code: ErrorCode): err is TfcError {
  return err instanceof TfcError && err.code === code;
}
export const NotFoundError = kind('NOT_FOUND');
export const PayloadTooLargeError = kind('PAYLOAD_TOO_LARGE');
export const UriTooLongError = kind('URI_TOO_LONG');
export const UnsupportedMediaTypeError = kind('UNSUPPORTED_MEDIA_TYPE');
export const RequestTimeoutError = kind('REQUEST_TIMEOUT');
export const RequestHeadersTooLargeError = kind('REQUEST_HEADERS_TOO_LARGE');
export const InternalError = kind('INTERNAL');
export const VmBusyError = kind('VM_BUSY');
export const ProcessNotFoundError = kind('PROCESS_NOT_FOUND');
export const NotImplementedError = kind('NOT_IMPLEMENTED');
export const EventStreamsExhaustedError = kind('EVENT_STREAMS_EXHAUSTED');
export const ClusterUnavailableError = kind('CLUSTER_UNAVAILABLE');
export const NodeLostError = kind('NODE_LOST');
export const NodeUnknownError = kind('NODE_UNKNOWN');
export const NodeUnreachableError = kind('NODE_UNREACHABLE');
