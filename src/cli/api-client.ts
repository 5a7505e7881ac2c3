import { DaemonUnavailableError, isErrorCode, TfcError } from '../errors/index.js';
import { readToken } from '../runtime/index.js';
import type { CliContext } from './context.js';
import { readSse, type SseMessage } from './sse-client.js';

/** Where the CLI finds the daemon: TFC_URL, else http://<api.listen> (0.0.0.0 and :: mean this host). */
export function daemonUrl(ctx: CliContext, env: NodeJS.ProcessEnv = process.env): string {
  if (env.TFC_URL) return env.TFC_URL.replace(/\/$/, '');
  const listen = ctx.config.api.listen.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
  return `http://${listen}`;
}

/**
 * A thin client of the daemon's REST API for the CLI. Errors from the
 * daemon come back as TfcError with the daemon's code and message; a daemon
 * that does not answer is DAEMON_UNAVAILABLE with the fix.
 */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string | null,
  ) {}

  static fromContext(ctx: CliContext): ApiClient {
    return new ApiClient(daemonUrl(ctx), readToken(ctx.config.dataDir));
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new DaemonUnavailableError(`no tfc daemon answers at ${this.baseUrl}; start one with \`tfc serve\` (or set TFC_URL)`, { cause: err });
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    if (!res.ok) throw this.errorOf(res.status, text);
    try {
      return (text ? JSON.parse(text) : undefined) as T;
    } catch {
      throw new DaemonUnavailableError(`${this.baseUrl} answered ${res.status} with something that is not tfc JSON; is TFC_URL right?`);
    }
  }

  /**
   * Opens a Server-Sent Events stream (GET `path`, resuming after
   * `lastEventId`); resolves with its messages once the daemon answered 200.
   * Errors as `request`. Aborting `signal` closes the stream.
   */
  async events(path: string, options: { lastEventId?: number; signal?: AbortSignal } = {}): Promise<AsyncGenerator<SseMessage>> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        headers: {
          accept: 'text/event-stream',
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(options.lastEventId ? { 'last-event-id': String(options.lastEventId) } : {}),
        },
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw new DaemonUnavailableError(`no tfc daemon answers at ${this.baseUrl}; start one with \`tfc serve\` (or set TFC_URL)`, { cause: err });
    }
    if (!res.ok || !res.body) throw this.errorOf(res.status, await res.text());
    return readSse(res.body);
  }

  /** The TfcError for a non-2xx answer: the daemon's code and message, or the status and whatever text came. */
  private errorOf(status: number, text: string): TfcError {
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      return new DaemonUnavailableError(`${this.baseUrl} answered ${status} with something that is not tfc JSON; is TFC_URL right?`);
    }
    const raw = (json as { error?: unknown })?.error;
    // Anything but the envelope (a proxy, an older daemon) is reported with its status and any message.
    const e = raw !== null && typeof raw === 'object' ? (raw as { code?: string; message?: string; details?: Record<string, unknown> }) : undefined;
    // The daemon speaks the same registry; an unknown code (a newer daemon) keeps its text in the message.
    const code = isErrorCode(e?.code) ? e.code : 'INTERNAL';
    const other = (json as { message?: unknown })?.message;
    const message = e?.message ?? (typeof other === 'string' ? other.slice(0, 300) : `HTTP ${status}`);
    return new TfcError(code, code === e?.code ? message : `${e?.code ?? `HTTP ${status}`}: ${message}`, {
      status,
      ...(e?.details ? { details: e.details } : {}),
    });
  }
}
