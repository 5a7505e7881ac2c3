/**
 * The request core of TfcClient: one place that adds the bearer token,
 * applies timeouts, maps answers to typed errors (errors.ts) and retries
 * what is safe to retry. It knows nothing about routes.
 */
import type { TfcError } from '../errors/index.js';
import { errorOfAnswer, unavailable } from './errors.js';

/** When and how long to retry an answer that says "not now" (POOL_EXHAUSTED, VM_BUSY). */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 10; 1 = never retry). */
  maxAttempts: number;
  /** Give up once this much time passed since the first attempt, waits included (default 30000). */
  maxTotalMs: number;
  /** Wait when the answer names no delay (default 500). */
  defaultDelayMs: number;
  /** Longest single wait, whatever the answer asks (default 10000). */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 10, maxTotalMs: 30_000, defaultDelayMs: 500, maxDelayMs: 10_000 };

/** Codes whose answers mean "nothing happened, try again later". */
const RETRYABLE = new Set(['POOL_EXHAUSTED', 'VM_BUSY']);

export interface TfcClientOptions {
  /** The daemon's base URL, e.g. http://127.0.0.1:7070 (the CLI reads TFC_URL or api.listen). */
  url: string;
  /** The bearer token (`<data_dir>/api-token`); null or absent sends none. */
  token?: string | null;
  /** A fetch implementation (default: the global fetch of Node >= 20). */
  fetch?: typeof fetch;
  /**
   * Longest wait for a JSON answer (default 60000). Calls that run
   * something for a known time (exec, run, allocate) wait that long more;
   * streams (output, downloads, uploads) are bounded by your `signal` only.
   */
  timeoutMs?: number;
  /** Retries of POOL_EXHAUSTED / VM_BUSY answers for allocate and GETs; false never retries. */
  retry?: Partial<RetryPolicy> | false;
}

export interface RequestOptions {
  /** JSON body. */
  json?: unknown;
  /** A raw body (uploads); sent as application/octet-stream. */
  body?: BodyInit;
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  /** Retry POOL_EXHAUSTED / VM_BUSY: only for calls that did nothing when refused (allocate, GETs). */
  retry?: boolean;
  /** Extra time on top of timeoutMs; `null` = no timeout (streams). */
  extraTimeoutMs?: number | null;
  signal?: AbortSignal;
}

export class HttpCore {
  readonly baseUrl: string;
  private readonly token: string | null;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy | null;

  constructor(options: TfcClientOptions) {
    this.baseUrl = options.url.replace(/\/+$/, '');
    this.token = options.token ?? null;
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.retry = options.retry === false ? null : { ...DEFAULT_RETRY, ...options.retry };
  }

  url(path: string, query?: RequestOptions['query']): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) q.set(k, String(v));
    const qs = q.toString();
    return `${this.baseUrl}${path}${qs ? `?${qs}` : ''}`;
  }

  /**
   * Sends one request and resolves with the 2xx Response (body unread).
   * Throws the daemon's typed error for any other answer, DAEMON_UNAVAILABLE
   * when no answer came (or none in time); an aborted `signal` rethrows its
   * reason. Retries as RequestOptions.retry says; a streamed body (not
   * replayable) is never retried.
   */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const started = Date.now();
    const policy = options.retry && this.retry && !isStream(options.body) ? this.retry : null;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(method, path, options);
      } catch (err) {
        const wait = policy ? retryDelay(err, policy, attempt, Date.now() - started) : null;
        if (wait === null || options.signal?.aborted) throw err;
        await sleep(wait, options.signal);
      }
    }
  }

  /** `send`, then the body as JSON (undefined for 204). */
  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, options);
    if (res.status === 204) return undefined as T;
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason ?? err;
      throw unavailable(this.baseUrl, err);
    }
    try {
      return (text ? JSON.parse(text) : undefined) as T;
    } catch {
      throw errorOfAnswer(this.baseUrl, res.status, text);
    }
  }

  private async once(method: string, path: string, options: RequestOptions): Promise<Response> {
    const signals: AbortSignal[] = [];
    if (options.signal) signals.push(options.signal);
    if (options.extraTimeoutMs !== null) signals.push(AbortSignal.timeout(this.timeoutMs + (options.extraTimeoutMs ?? 0)));
    const hasJson = options.json !== undefined;
    const init: RequestInit & { duplex?: 'half' } = {
      method,
      headers: {
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        ...(hasJson ? { 'content-type': 'application/json' } : {}),
        ...(options.body !== undefined ? { 'content-type': 'application/octet-stream' } : {}),
        ...options.headers,
      },
      ...(hasJson ? { body: JSON.stringify(options.json) } : options.body !== undefined ? { body: options.body } : {}),
      ...(isStream(options.body) ? { duplex: 'half' } : {}),
      ...(signals.length ? { signal: signals.length === 1 ? signals[0] : AbortSignal.any(signals) } : {}),
    };
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(path, options.query), init);
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason ?? err;
      throw unavailable(this.baseUrl, err);
    }
    if (res.ok) return res;
    const error: TfcError = errorOfAnswer(this.baseUrl, res.status, await res.text().catch(() => ''));
    const retryAfter = res.headers.get('retry-after');
    if (retryAfter !== null) Object.defineProperty(error, 'retryAfterHeader', { value: retryAfter });
    throw error;
  }
}

function isStream(body: unknown): boolean {
  return body instanceof ReadableStream;
}

/**
 * How long to wait before attempt `attempt + 1`, or null to give up: only
 * retryable codes, within maxAttempts and maxTotalMs. The daemon's own
 * figure (details.retry_after_ms) wins over the Retry-After header (the
 * same figure rounded up to whole seconds), which wins over the default.
 */
export function retryDelay(err: unknown, policy: RetryPolicy, attempt: number, elapsedMs: number): number | null {
  const e = err as TfcError & { retryAfterHeader?: string };
  if (!RETRYABLE.has(e?.code) || attempt >= policy.maxAttempts) return null;
  const fromDetails = Number(e.details?.retry_after_ms);
  const header = e.retryAfterHeader;
  const fromHeader = header === undefined ? NaN : /^\d+$/.test(header.trim()) ? Number(header) * 1000 : Date.parse(header) - Date.now();
  const asked = Number.isFinite(fromDetails) && fromDetails >= 0 ? fromDetails : Number.isFinite(fromHeader) ? Math.max(0, fromHeader) : policy.defaultDelayMs;
  const wait = Math.min(asked, policy.maxDelayMs);
  return elapsedMs + wait > policy.maxTotalMs ? null : wait;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', abort);
      resolve();
    }
    function abort() {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener('abort', abort, { once: true });
  });
}
