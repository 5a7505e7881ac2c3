/**
 * Turns the daemon's error envelope `{error: {code, message, details}}`
 * into the same typed error classes the daemon threw (src/errors): a
 * VM_NOT_FOUND answer becomes a VmNotFoundError, `instanceof` and
 * `err.code` both work. A daemon that cannot be reached is
 * DAEMON_UNAVAILABLE. This module must not do any I/O.
 */
import * as errors from '../errors/index.js';
import { isErrorCode, TfcError, type ErrorCode } from '../errors/index.js';

type ErrorClass = new (message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) => TfcError;

/** Every error class of src/errors with a fixed code, by that code (built from the module's exports, so a new kind is picked up). */
const CLASSES: ReadonlyMap<string, ErrorClass> = new Map(
  Object.values(errors as Record<string, unknown>)
    .filter(
      (v): v is ErrorClass & { code: string } =>
        typeof v === 'function' && v.prototype instanceof TfcError && typeof (v as { code?: unknown }).code === 'string',
    )
    .map((c) => [c.code, c]),
);

/** The error for `code` (its registered class when there is one), carrying the answer's HTTP status. */
export function errorFor(code: ErrorCode, message: string, options: { status?: number; details?: Record<string, unknown>; cause?: unknown } = {}): TfcError {
  const Class = CLASSES.get(code);
  const base = { ...(options.details ? { details: options.details } : {}), ...(options.cause !== undefined ? { cause: options.cause } : {}) };
  const err = Class ? new Class(message, base) : new TfcError(code, message, base);
  // The status the daemon really answered with (a proxy or an older daemon may differ from the registry).
  if (options.status !== undefined && options.status !== err.status) Object.defineProperty(err, 'status', { value: options.status, enumerable: true });
  return err;
}

/**
 * The error for a non-2xx answer: the daemon's code, message and details;
 * an unknown code (a newer daemon) becomes INTERNAL with the code kept in
 * the message; a body that is not the envelope (a proxy) keeps its status
 * and text.
 */
export function errorOfAnswer(baseUrl: string, status: number, text: string): TfcError {
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    return errorFor('DAEMON_UNAVAILABLE', `${baseUrl} answered ${status} with something that is not tfc JSON; is TFC_URL right?`, { status });
  }
  const raw = (json as { error?: unknown } | undefined)?.error;
  const e = raw !== null && typeof raw === 'object' ? (raw as { code?: unknown; message?: unknown; details?: unknown }) : undefined;
  const other = (json as { message?: unknown } | undefined)?.message;
  const message = typeof e?.message === 'string' ? e.message : typeof other === 'string' ? other.slice(0, 300) : `HTTP ${status}`;
  const details = e?.details !== null && typeof e?.details === 'object' ? (e.details as Record<string, unknown>) : undefined;
  const code = isErrorCode(e?.code) ? e.code : 'INTERNAL';
  const text2 = code === e?.code ? message : `${typeof e?.code === 'string' ? e.code : `HTTP ${status}`}: ${message}`;
  return errorFor(code, text2, { status, ...(details ? { details } : {}) });
}

/** DAEMON_UNAVAILABLE for a request that got no answer at all. */
export function unavailable(baseUrl: string, cause: unknown): TfcError {
  const timedOut = (cause as { name?: string } | undefined)?.name === 'TimeoutError';
  return errorFor(
    'DAEMON_UNAVAILABLE',
    timedOut ? `the tfc daemon at ${baseUrl} did not answer in time` : `no tfc daemon answers at ${baseUrl}; start one with \`tfc serve\` (or set TFC_URL)`,
    { cause },
  );
}
