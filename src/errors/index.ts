/**
 * Errors: the one base class every module throws, with a stable `code`, an
 * HTTP `status` (used only by the API layer's single mapping function), an
 * optional `cause` and `details`. Codes are documented in docs/errors.md; a
 * code, once published, never changes meaning.
 *
 * This module must not import anything from the rest of the project.
 */

export interface TfcErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class TfcError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details?: Record<string, unknown>;

  constructor(code: string, status: number, message: string, options: TfcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TfcError';
    this.code = code;
    this.status = status;
    if (options.details) this.details = options.details;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** Helper to declare an error kind with a fixed code and status. */
function kind(code: string, status: number) {
  return class extends TfcError {
    static readonly code = code;
    constructor(message: string, options: TfcErrorOptions = {}) {
      super(code, status, message, options);
    }
  };
}

export const ConfigInvalidError = kind('CONFIG_INVALID', 400);
export const ConfigNotFoundError = kind('CONFIG_NOT_FOUND', 400);
export const InvalidStateError = kind('INVALID_STATE', 409);
export const InvalidArgumentError = kind('INVALID_ARGUMENT', 400);
export const ProfileNotFoundError = kind('PROFILE_NOT_FOUND', 404);
export const ImageNotFoundError = kind('IMAGE_NOT_FOUND', 404);
export const ImageBuildFailedError = kind('IMAGE_BUILD_FAILED', 500);
export const VmNotFoundError = kind('VM_NOT_FOUND', 404);
export const VmmBinaryNotFoundError = kind('VMM_BINARY_NOT_FOUND', 500);
export const VmmSpawnFailedError = kind('VMM_SPAWN_FAILED', 500);
export const VmmExitedError = kind('VMM_EXITED', 500);
export const VmBootTimeoutError = kind('VM_BOOT_TIMEOUT', 504);
export const QmpError = kind('QMP_ERROR', 500);
export const QmpTimeoutError = kind('QMP_TIMEOUT', 504);
export const AgentError = kind('AGENT_ERROR', 502);
export const AgentTimeoutError = kind('AGENT_TIMEOUT', 504);
export const AgentDisconnectedError = kind('AGENT_DISCONNECTED', 502);
export const AgentProtocolError = kind('AGENT_PROTOCOL', 502);
export const GuestCommandNotFoundError = kind('GUEST_COMMAND_NOT_FOUND', 422);
export const ProcessFailedError = kind('PROCESS_FAILED', 500);
export const StoreError = kind('STORE_ERROR', 500);
export const AccelUnavailableError = kind('ACCEL_UNAVAILABLE', 500);
export const SnapshotNotFoundError = kind('SNAPSHOT_NOT_FOUND', 404);
export const PoolNotFoundError = kind('POOL_NOT_FOUND', 404);
export const PoolExhaustedError = kind('POOL_EXHAUSTED', 503);
export const UnauthorizedError = kind('UNAUTHORIZED', 401);
export const DaemonUnavailableError = kind('DAEMON_UNAVAILABLE', 503);

/** True when `err` is a TfcError carrying `code`. */
export function hasCode(err: unknown, code: string): err is TfcError {
  return err instanceof TfcError && err.code === code;
}
