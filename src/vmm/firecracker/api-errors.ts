/**
 * Errors of the Firecracker API client: Firecracker refused or failed a
 * request (`FIRECRACKER_API_ERROR`), or did not answer in time
 * (`FIRECRACKER_API_TIMEOUT`). Both carry the method and path so a log line
 * says which step of a boot or restore went wrong.
 */
import { TfcError, type TfcErrorOptions } from '../../errors/index.js';

/** What FirecrackerApiError keeps in `details`. */
export interface FirecrackerApiErrorDetails {
  method: string;
  path: string;
  /** HTTP status of Firecracker's answer; null when no answer arrived (socket missing, connection reset). */
  httpStatus: number | null;
  /** Firecracker's `fault_message` (or the raw body when it was not the usual JSON); null without an answer. */
  faultMessage: string | null;
  /** The API socket, when known. */
  socketPath?: string;
}

/**
 * Firecracker answered a request with 4xx/5xx, answered something that is
 * not HTTP/JSON, or could not be reached. Status 502: the VMM behind us
 * failed. The message quotes Firecracker's `fault_message`.
 */
export class FirecrackerApiError extends TfcError {
  static readonly code = 'FIRECRACKER_API_ERROR';
  declare readonly details: FirecrackerApiErrorDetails & Record<string, unknown>;

  constructor(message: string, details: FirecrackerApiErrorDetails, options: Omit<TfcErrorOptions, 'details'> = {}) {
    super(FirecrackerApiError.code, message, { ...options, details: { ...details } });
    this.name = 'FirecrackerApiError';
  }

  /** Firecracker's own words, e.g. "The requested operation is not supported after starting the microVM.". */
  get faultMessage(): string | null {
    return this.details.faultMessage;
  }

  /** HTTP status Firecracker answered with; null when it never answered. */
  get httpStatus(): number | null {
    return this.details.httpStatus;
  }
}

/** What FirecrackerApiTimeoutError keeps in `details`. */
export interface FirecrackerApiTimeoutDetails {
  method: string;
  path: string;
  timeoutMs: number;
  socketPath?: string;
}

/**
 * A request got no complete answer within its `timeoutMs` (or the API
 * socket never answered within `waitForSocket`'s timeout). Status 504.
 */
export class FirecrackerApiTimeoutError extends TfcError {
  static readonly code = 'FIRECRACKER_API_TIMEOUT';
  declare readonly details: FirecrackerApiTimeoutDetails & Record<string, unknown>;

  constructor(message: string, details: FirecrackerApiTimeoutDetails, options: Omit<TfcErrorOptions, 'details'> = {}) {
    super(FirecrackerApiTimeoutError.code, message, { ...options, details: { ...details } });
    this.name = 'FirecrackerApiTimeoutError';
  }
}
