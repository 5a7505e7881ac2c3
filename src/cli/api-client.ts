import { TfcClient } from '../client/index.js';
import { readToken } from '../runtime/index.js';
import type { CliContext } from './context.js';

/** Where the CLI finds the daemon: TFC_URL, else http://<api.listen> (0.0.0.0 and :: mean this host). */
export function daemonUrl(ctx: CliContext, env: NodeJS.ProcessEnv = process.env): string {
  if (env.TFC_URL) return env.TFC_URL.replace(/\/$/, '');
  const listen = ctx.config.api.listen.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
  return `http://${listen}`;
}

/**
 * The CLI's client of the daemon: the package's TfcClient (src/client), so
 * the CLI and library users share one implementation of every call, error
 * typing and output resumption. The CLI does not retry POOL_EXHAUSTED or
 * VM_BUSY itself: a user who wants to wait says so with `--timeout-ms`,
 * which the daemon honours, and gets the daemon's answer at once otherwise.
 */
export class ApiClient extends TfcClient {
  constructor(baseUrl: string, token: string | null) {
    super({ url: baseUrl, token, retry: false });
  }

  static fromContext(ctx: CliContext): ApiClient {
    return new ApiClient(daemonUrl(ctx), readToken(ctx.config.dataDir));
  }

  /**
   * A raw JSON call for routes without a typed method yet: the daemon's
   * answer (undefined for 204), errors typed as every other call.
   */
  request<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.http.json<T>(method, path, body === undefined ? {} : { json: body });
  }
}
