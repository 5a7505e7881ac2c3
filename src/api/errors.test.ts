import { describe, expect, it } from 'vitest';
import { PoolExhaustedError, statusOf, isErrorCode } from '../errors/index.js';
import { toHttpError } from './errors.js';

describe('toHttpError', () => {
  it("keeps a typed error's code, status and details, with Retry-After for exhaustion", () => {
    const r = toHttpError(new PoolExhaustedError('empty', { details: { retry_after_ms: 2500 } }));
    expect(r).toEqual({
      status: 503,
      headers: { 'retry-after': '3' },
      body: { error: { code: 'POOL_EXHAUSTED', message: 'empty', details: { retry_after_ms: 2500 } } },
    });
  });

  it.each([
    ['FST_ERR_CTP_INVALID_MEDIA_TYPE', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['FST_ERR_CTP_BODY_TOO_LARGE', 413, 'PAYLOAD_TOO_LARGE'],
    ['FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400, 'INVALID_ARGUMENT'],
    ['FST_ERR_CTP_EMPTY_JSON_BODY', 400, 'INVALID_ARGUMENT'],
    ['FST_ERR_CTP_INVALID_JSON_BODY', 400, 'INVALID_ARGUMENT'],
    ['FST_ERR_BAD_URL', 400, 'INVALID_ARGUMENT'],
    ['FST_ERR_MAX_PARAM_LENGTH', 414, 'URI_TOO_LONG'],
  ])('maps Fastify %s to %i %s', (fst, status, code) => {
    const r = toHttpError(Object.assign(new Error('x'), { code: fst, statusCode: status }));
    expect(r.status).toBe(status);
    expect(r.body.error.code).toBe(code);
  });

  it('answers other client errors with a registered code whose status it uses, and anything else with 500 INTERNAL', () => {
    for (const statusCode of [400, 404, 405, 408, 413, 414, 415, 418, 429]) {
      const r = toHttpError(Object.assign(new Error('client'), { statusCode }));
      expect(isErrorCode(r.body.error.code)).toBe(true);
      expect(r.status).toBe(statusOf(r.body.error.code));
    }
    expect(toHttpError(new TypeError('boom'))).toMatchObject({ status: 500, body: { error: { code: 'INTERNAL', message: 'boom' } } });
    expect(toHttpError(undefined)).toMatchObject({ status: 500, body: { error: { code: 'INTERNAL' } } });
    expect(toHttpError(Object.assign(new Error('inner'), { statusCode: 503, code: 'FST_ERR_HANDLER_TIMEOUT' })).status).toBe(500);
  });
});
