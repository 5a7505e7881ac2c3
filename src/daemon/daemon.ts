import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { buildApp } from '../api/index.js';
import { terraphimOptionsFromConfig } from '../api/terraphim/index.js';
import type { Config } from '../config/index.js';
import { PoolManager } from '../pool/index.js';
import type { VmService } from '../vm/index.js';
import { createMetrics } from '../metrics/index.js';
import { EventBus, PoolEventPublisher, vmEventObserver } from '../events/index.js';
import { AlertMonitor, DEFAULT_ALERTS_CONFIG } from '../alerts/index.js';
import { AlertRepository } from '../store/index.js';
import { CodeRunner, runtimeVmSource } from '../run/index.js';
import { composeRuntime, loadOrCreateToken, type ApiToken, type ReconcileReport } from '../runtime/index.js';
import { localVmList, startClusterNode, type ClusterNode } from '../cluster/node.js';

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
  /** The event stream (GET /v1/events): VM transitions, allocations, releases, pool counts; subscribers must not block. */
  events: EventBus;
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
  const events = new EventBus();
  const vmEvents = vmEventObserver(events);
  const runtime = await composeRuntime(config, {
    reconcile: true,
    observer: {
      vmReady: (vm) => {
        metrics.vmReady(vm);
        vmEvents.vmReady(vm);
      },
      vmFailed: (driver, code) => {
        metrics.vmFailed(driver, code);
        vmEvents.vmFailed(driver, code);
      },
      vmState: vmEvents.vmState,
    },
    // Restores (pool refills, forks) adopt a VMM started ahead of time (profiles.X.standby_vmms).
    standbyVmms: { onProblem: (message) => logger.warn(message) },
  });
  const { service, repo } = runtime;
  const reconciled = runtime.reconciled!;
  logger.info({ reconciled }, 'reconciled the store with this machine');
  // Counts are read at most every 250 ms per pool; `pools` exists by then.
  const poolEvents: PoolEventPublisher = new PoolEventPublisher(events, () => pools.list());
  const pools = new PoolManager(config, runtime.snapshots, service, (event) => logger.warn(event, `pool ${event.pool}: ${event.kind}: ${event.message}`), {
    activity: poolEvents,
  });
  let app: FastifyInstance | undefined;
  let monitor: AlertMonitor | undefined;
  let clusterNode: ClusterNode | undefined;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Cluster mode: leave first (lease revoked), so the other nodes stop sending work here at once.
      await clusterNode?.stop();
      // Pools stop alongside the server so waiting allocations fail at once
      // instead of holding app.close() open until their deadlines.
      // The monitor gives queued webhook deliveries up to 2 s before the store closes.
      await Promise.all([app?.close(), pools.stop(), monitor?.stop(2000)]);
      poolEvents.close();
      await runtime.close('daemon shutting down');
    })());
  try {
    // [alerts]: rules over the bus's measurements, kept in the store, sent to webhooks (docs/alerts.md); started first so prewarm boots count.
    const alerts = config.alerts ?? DEFAULT_ALERTS_CONFIG;
    if (alerts.enabled) {
      monitor = new AlertMonitor({
        bus: events,
        alerts,
        profiles: config.profiles,
        dataDir: config.dataDir,
        repo: new AlertRepository(runtime.db),
        readPools: () => pools.list(),
        env: options.env ?? process.env,
        onError: (message) => logger.warn(message),
      });
      monitor.start();
    }
    await pools.start(options.onProgress);
    // [cluster]: register with etcd, publish pool counts (docs/cluster.md); never waits for etcd.
    if (config.cluster) {
      clusterNode = await startClusterNode(config.cluster, {
        version: VERSION,
        readPools: () => pools.list(),
        countVms: () => service.list().length,
        listVms: () => localVmList({ service, pools }),
        log: (level, message, data) => logger[level](data ?? {}, message),
      });
    }
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
    app = await buildApp({
      pools,
      service,
      repo,
      token: token.token,
      version: VERSION,
      logger,
      metrics,
      limits: config.api,
      runner,
      liveSnapshots,
      terraphim,
      events,
      alerts: monitor,
      cluster: clusterNode?.gateway,
    });
    const { host, port } = parseListen(options.listen);
    const address = await app.listen({ host, port });
    return { url: address, token, reconciled, app, pools, service, events, close };
  } catch (err) {
    await close();
    throw err;
  }
}

function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(listen.slice(i + 1)) };
}
