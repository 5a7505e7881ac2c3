import { DaemonUnavailableError, isErrorCode, TfcError } from '../errors/index.js';
import { readToken } from '../runtime/index.js';
import type { CliContext } from './context.js';

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
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new DaemonUnavailableError(`${this.baseUrl} answered ${res.status} with something that is not tfc JSON; is TFC_URL right?`);
    }
    if (!res.ok) {
      const raw = (json as { error?: unknown })?.error;
      // Anything but the envelope (a proxy, an older daemon) is reported with its status and any message.
      const e = raw !== null && typeof raw === 'object' ? (raw as { code?: string; message?: string; details?: Record<string, unknown> }) : undefined;
      // The daemon speaks the same registry; an unknown code (a newer daemon) keeps its text in the message.
      const code = isErrorCode(e?.code) ? e.code : 'INTERNAL';
      const other = (json as { message?: unknown })?.message;
      const message = e?.message ?? (typeof other === 'string' ? other.slice(0, 300) : `HTTP ${res.status}`);
      throw new TfcError(code, code === e?.code ? message : `${e?.code ?? `HTTP ${res.status}`}: ${message}`, {
        status: res.status,
        ...(e?.details ? { details: e.details } : {}),
      });
    }
    return json as T;
  }
}
