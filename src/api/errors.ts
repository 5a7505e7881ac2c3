import { TfcError, type ErrorCode } from '../errors/index.js';

export interface HttpErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } };
}

/**
 * The single mapping from errors to HTTP responses. Typed errors keep their
 * code, status and details; POOL_EXHAUSTED adds Retry-After (seconds);
 * request validation errors become 400 INVALID_ARGUMENT; anything else is a
 * 500 INTERNAL whose message does not leak internals beyond the text.
 */
export function toHttpError(err: unknown): HttpErrorResponse {
  if (err instanceof TfcError) {
    const headers: Record<string, string> = {};
    if (err.code === 'POOL_EXHAUSTED') {
      const ms = Number(err.details?.retry_after_ms ?? 1000);
      headers['retry-after'] = String(Math.max(1, Math.ceil(ms / 1000)));
    }
    if (err.code === 'UNAUTHORIZED') headers['www-authenticate'] = 'Bearer';
    return { status: err.status, headers, body: { error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } } };
  }
  const e = err as { validation?: unknown; statusCode?: number; message?: string; code?: string };
  if (e?.validation || (e?.statusCode && e.statusCode >= 400 && e.statusCode < 500)) {
    const code: ErrorCode = e.statusCode === 404 ? 'NOT_FOUND' : e.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : e.statusCode === 414 ? 'URI_TOO_LONG' : e.statusCode === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : e.statusCode === 408 ? 'REQUEST_TIMEOUT' : 'INVALID_ARGUMENT';
    return { status: e.statusCode ?? 400, headers: {}, body: { error: { code, message: e.message ?? 'bad request' } } };
  }
  return { status: 500, headers: {}, body: { error: { code: 'INTERNAL', message: e?.message ?? String(err) } } };
}
