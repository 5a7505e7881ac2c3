import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { buildApp } from '../api/index.js';
import type { Config } from '../config/index.js';
import { PoolManager } from '../pool/index.js';
import { SnapshotManager } from '../snapshot/index.js';
import { dataLayout, openDatabase, VmRepository, type Db } from '../store/index.js';
import { VmService } from '../vm/index.js';
import { createDrivers } from '../vmm/index.js';
import { reconcileAtStart, type ReconcileReport } from './reconcile.js';
import { createMetrics } from '../metrics/index.js';
import { prepareNetworking } from './networking.js';
import { loadOrCreateToken, type ApiToken } from './token.js';

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
 * Wiring: config -> store (reconciled) -> drivers -> VM service -> golden
 * snapshots -> pools (prewarming) -> API. Resolves once the API listens.
 * On a failure while starting, everything started so far is stopped.
 */
export async function startDaemon(config: Config, options: DaemonOptions): Promise<Daemon> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { component: 'tfc-serve' } }, pino.destination(2));
  const layout = dataLayout(config.dataDir);
  const token = loadOrCreateToken(config.dataDir, options.env);
  const db: Db = openDatabase(layout.database);
  const repo = new VmRepository(db);
  const drivers = createDrivers(config);
  // Pool gauges are read at scrape time; `pools` exists by then.
  const metrics = createMetrics(() => pools.list());
  const reconciled = reconcileAtStart(layout, repo, drivers);
  logger.info({ reconciled }, 'reconciled the store with this machine');
  const networking = await prepareNetworking(config, db, repo).catch((err) => {
    db.close();
    throw err;
  });
  const service = new VmService({
    layout,
    repo,
    drivers,
    stopTimeoutMs: config.vmm.qemu.stopTimeoutMs,
    ...(networking ? { networks: networking.manager } : {}),
    observer: { vmReady: (vm) => metrics.vmReady(vm), vmFailed: (driver, code) => metrics.vmFailed(driver, code) },
  });
  const snapshots = new SnapshotManager(layout, service);
  const pools = new PoolManager(config, snapshots, service, (event) => logger.warn(event, `pool ${event.pool}: ${event.kind}: ${event.message}`));
  let app: FastifyInstance | undefined;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Pools stop alongside the server so waiting allocations fail at once
      // instead of holding app.close() open until their deadlines.
      await Promise.all([app?.close(), pools.stop()]);
      await service.stopAll('daemon shutting down');
      // The host-side table goes too once no VM network is left (it refuses while leases exist).
      await networking?.manager.removeHost().catch(() => undefined);
      db.close();
    })());
  try {
    await pools.start(options.onProgress);
    app = await buildApp({ pools, service, repo, token: token.token, version: VERSION, logger, metrics });
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
