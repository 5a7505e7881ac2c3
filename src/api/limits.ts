/**
 * The bounds the REST API puts on what a client may send: request sizes,
 * argv/env/path sizes, exec timeouts and the server's request timeouts. The
 * configurable ones come from the `[api]` table (docs/configuration.md); the
 * fixed ones follow what Linux and the guest agent accept. This module only
 * holds numbers; validation.ts applies them.
 */
import { EXEC_DEFAULT_TIMEOUT_MS } from '../guest/agent-protocol.js';

const KIB = 1024;
const MIB = 1024 * KIB;

export interface ApiLimits {
  /** `api.max_exec_timeout_ms`: largest exec timeout_ms; default 600000. */
  maxExecTimeoutMs: number;
  /** `api.request_timeout_ms`: time to receive a whole request (Node's requestTimeout); default 600000. */
  requestTimeoutMs: number;
  /** `api.max_upload_bytes`: largest PUT /v1/vms/{id}/files body; default 1 GiB. */
  maxUploadBytes: number;
  /** `api.max_download_bytes`: largest GET /v1/vms/{id}/files answer; default 1 GiB. */
  maxDownloadBytes: number;
}

export const DEFAULT_API_LIMITS: Readonly<ApiLimits> = {
  maxExecTimeoutMs: 600_000,
  requestTimeoutMs: 600_000,
  maxUploadBytes: 1024 * MIB,
  maxDownloadBytes: 1024 * MIB,
};

/**
 * Largest JSON body. Exec stdin travels inside it; 8 MiB of stdin is about
 * 10.7 MiB of base64, which leaves room for argv and env in the agent's
 * 16 MiB request frame.
 */
export const MAX_JSON_BODY_BYTES = 8 * MIB;
/** Headers must arrive within this long (or the request timeout, if shorter): slow-header clients hold sockets. */
export const MAX_HEADERS_TIMEOUT_MS = 30_000;
/** Longest path parameter (VM ids are 15 characters, pool names 32): longer is 414. */
export const MAX_PARAM_LENGTH = 128;
/** Longest request URL, query included (a guest path of 4095 bytes percent-encodes to about 12 KiB): longer is 414. Below Node's 16 KiB limit on the request line plus headers, so a real socket gets the 414 too, not a 431. */
export const MAX_URL_LENGTH = 14 * KIB;

/** Arguments of one exec (Linux allows far more, but no sane tool call needs it). */
export const MAX_ARGV_ITEMS = 4096;
/** Environment variables of one exec. */
export const MAX_ENV_ENTRIES = 1024;
/** Linux MAX_ARG_STRLEN (128 KiB, terminating NUL included): one argument or NAME=VALUE string. */
export const MAX_ARG_BYTES = 128 * KIB - 1;
/** All of argv plus env, in UTF-8 bytes (Linux's own limit is a quarter of the stack, usually 2 MiB). */
export const MAX_ARGV_ENV_TOTAL_BYTES = 1 * MIB;
/** Linux PATH_MAX (4096, terminating NUL included): cwd and file paths. */
export const MAX_PATH_BYTES = 4095;

/** Exec timeout for a request without one, or with 0 (never "no limit"): the agent's default, capped by the maximum. */
export function defaultExecTimeoutMs(limits: ApiLimits): number {
  return Math.min(EXEC_DEFAULT_TIMEOUT_MS, limits.maxExecTimeoutMs);
}

/** Headers timeout for Node's server: MAX_HEADERS_TIMEOUT_MS or the request timeout, whichever is shorter. */
export function headersTimeoutMs(limits: ApiLimits): number {
  return Math.min(MAX_HEADERS_TIMEOUT_MS, limits.requestTimeoutMs);
}

/** Stdin bytes in one POST .../processes/{pid}/stdin (the guest agent queues at most 1 MiB per process). */
export const MAX_STDIN_CHUNK_BYTES = 1 * MIB;

/** Largest POST /v1/run body: 1 MiB of code and 16 MiB of files, base64-encoded, with room for stdin and env. */
export const MAX_RUN_BODY_BYTES = 32 * MIB;
