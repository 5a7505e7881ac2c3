import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { buildApp } from '../api/index.js';
import { terraphimOptionsFromConfig } from '../api/terraphim/index.js';
import type { Config } from '../config/index.js';
import { PoolManager } from '../pool/index.js';
import type { VmService } from '../vm/index.js';
import { createMetrics } from '../metrics/index.js';
import { CodeRunner, runtimeVmSource } from '../run/index.js';
import { composeRuntime, loadOrCreateToken, type ApiToken, type ReconcileReport } from '../runtime/index.js';

export const VERSION = '0.1.0';

export interface DaemonOptions {
  /** Where log lines go (JSON, pino); default: stderr at config log_level. */
  logger?: Logger;
  /** HOST:PORT (config api.listen, env TFC_LISTEN, `--listen`). Port 0 picks a free port. */
  listen: string;
  env?: NodeJS.ProcessEnv;
  /** Progress messages while starting (golden snapshots take a cold boot each). */
  onProgress?: (message: string) => void;
}

export interface Daemon {
  url: string;
  token: ApiToken;
  reconciled: ReconcileReport;
  app: FastifyInstance;
  pools: PoolManager;
  service: VmService;
  /** Stops serving, destroys every VM, closes the store. Idempotent. */
  close(): Promise<void>;
}

/**
 * Wiring: the runtime (store reconciled, drivers, networking, VM service,
 * golden snapshots; see composeRuntime) -> pools (prewarming) -> API.
 * Resolves once the API listens. On a failure while starting, everything
 * started so far is stopped.
 */
export async function startDaemon(config: Config, options: DaemonOptions): Promise<Daemon> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { component: 'tfc-serve' } }, pino.destination(2));
  const token = loadOrCreateToken(config.dataDir, options.env);
  // Pool gauges are read at scrape time; `pools` exists by then.
  const metrics = createMetrics(() => pools.list());
  const runtime = await composeRuntime(config, {
    reconcile: true,
    observer: { vmReady: (vm) => metrics.vmReady(vm), vmFailed: (driver, code) => metrics.vmFailed(driver, code) },
    // Restores (pool refills, forks) adopt a VMM started ahead of time (profiles.X.standby_vmms).
    standbyVmms: { onProblem: (message) => logger.warn(message) },
  });
  const { service, repo } = runtime;
  const reconciled = runtime.reconciled!;
  logger.info({ reconciled }, 'reconciled the store with this machine');
  const pools = new PoolManager(config, runtime.snapshots, service, (event) => logger.warn(event, `pool ${event.pool}: ${event.kind}: ${event.message}`));
  let app: FastifyInstance | undefined;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Pools stop alongside the server so waiting allocations fail at once
      // instead of holding app.close() open until their deadlines.
      await Promise.all([app?.close(), pools.stop()]);
      await runtime.close('daemon shutting down');
    })());
  try {
    await pools.start(options.onProgress);
    // POST /v1/run: a pool of the language's profile when there is one, else a clone of its golden snapshot.
    const runner = new CodeRunner({
      source: runtimeVmSource({ config, snapshots: runtime.snapshots, service, pools }),
      maxTimeoutMs: config.api.maxExecTimeoutMs,
      timeoutKey: 'api.max_exec_timeout_ms',
      giveBackInBackground: true,
      onGiveBackError: (err, vmId) => logger.warn({ err, vm: vmId }, `run: giving back ${vmId} failed: ${(err as Error).message}`),
    });
    const { liveSnapshots } = runtime;
    // [terraphim]: vm_type aliases, agents' vm_type, command history in the state database.
    const terraphim = terraphimOptionsFromConfig(config.terraphim, runtime.db);
    app = await buildApp({ pools, service, repo, token: token.token, version: VERSION, logger, metrics, limits: config.api, runner, liveSnapshots, terraphim });
    const { host, port } = parseListen(options.listen);
    const address = await app.listen({ host, port });
    return { url: address, token, reconciled, app, pools, service, close };
  } catch (err) {
    await close();
    throw err;
  }
}

function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(listen.slice(i + 1)) };
}
