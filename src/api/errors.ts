/**
 * The single mapping from errors to HTTP responses: typed errors, request
 * validation, and Fastify's own framework errors (router, body limit,
 * content type, JSON parsing) all leave as `{error: {code, message}}` with a
 * code from the registry. Nothing here sends; app.ts does.
 */
import { TfcError, statusOf, type ErrorCode } from '../errors/index.js';
import { MAX_JSON_BODY_BYTES, MAX_PARAM_LENGTH } from './limits.js';

export interface HttpErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } };
}

/** An envelope for `code` with the registry's status. */
export function envelope(code: ErrorCode, message: string, details?: Record<string, unknown>): HttpErrorResponse {
  return { status: statusOf(code), headers: {}, body: { error: { code, message, ...(details ? { details } : {}) } } };
}

/** Fastify's framework errors (by their FST_ code) and what to tell the client. */
const FRAMEWORK_ERRORS: Record<string, (e: FastifyLikeError) => HttpErrorResponse> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (e) =>
    envelope(
      'UNSUPPORTED_MEDIA_TYPE',
      `Content-Type ${e.contentType ?? 'of this request'} is not accepted; send application/json (file uploads: application/octet-stream)`,
    ),
  FST_ERR_CTP_BODY_TOO_LARGE: () =>
    envelope('PAYLOAD_TOO_LARGE', `the JSON body is larger than ${MAX_JSON_BODY_BYTES} bytes; send large data as a file upload`, {
      limit_bytes: MAX_JSON_BODY_BYTES,
    }),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => envelope('INVALID_ARGUMENT', 'the body size does not match Content-Length'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () =>
    envelope('INVALID_ARGUMENT', 'the body is empty but Content-Type is application/json; send a JSON object (e.g. {}) or no Content-Type'),
  FST_ERR_CTP_INVALID_JSON_BODY: () => envelope('INVALID_ARGUMENT', 'the body is not valid JSON'),
  FST_ERR_BAD_URL: (e) => envelope('INVALID_ARGUMENT', `the URL is malformed (${e.message}); percent-encode path segments`),
  FST_ERR_MAX_PARAM_LENGTH: () => envelope('URI_TOO_LONG', `a path parameter is longer than ${MAX_PARAM_LENGTH} characters; VM ids look like vm-0123456789ab`),
};

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message?: string;
  validation?: unknown;
  contentType?: string;
}

const STATUS_CODES: Record<number, ErrorCode> = {
  404: 'NOT_FOUND',
  408: 'REQUEST_TIMEOUT',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

/**
 * Maps any thrown value to a response. Typed errors keep their code, status
 * and details; POOL_EXHAUSTED adds Retry-After (seconds) and UNAUTHORIZED
 * WWW-Authenticate; request validation and Fastify's 4xx errors get a
 * registry code (INVALID_ARGUMENT for the rest, as a 400); anything else is
 * a 500 INTERNAL. Never throws.
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
  const e = (err ?? {}) as FastifyLikeError;
  const framework = e.code ? FRAMEWORK_ERRORS[e.code] : undefined;
  if (framework) return framework(e);
  if (e.validation) return envelope('INVALID_ARGUMENT', `${e.message ?? 'the request is invalid'}; see GET /v1/openapi.json`);
  // A JSON.parse SyntaxError (Fastify's parser tags it 400) and other client errors.
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const code = STATUS_CODES[e.statusCode] ?? 'INVALID_ARGUMENT';
    return envelope(code, err instanceof SyntaxError ? `the body is not valid JSON: ${e.message}` : (e.message ?? 'bad request'));
  }
  return envelope('INTERNAL', typeof e.message === 'string' && e.message ? e.message : String(err));
}
