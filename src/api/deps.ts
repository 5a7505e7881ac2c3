import type { Logger } from 'pino';
import type { PoolManager } from '../pool/index.js';
import type { Metrics } from '../metrics/index.js';
import type { VmRepository } from '../store/index.js';
import type { VmService } from '../vm/index.js';
import type { ApiLimits } from './limits.js';
import type { ProcessRegistry } from '../processes/index.js';
import type { CodeRunner } from '../run/index.js';

/** What the HTTP layer may use: core services only, never VMM internals. */
export interface ApiDeps {
  pools: PoolManager;
  service: VmService;
  repo: VmRepository;
  /** Bearer token every /v1 route except health and the OpenAPI document requires. */
  token: string;
  version: string;
  /** Server errors (5xx) are logged here; request logging is off (allocations are the hot path). */
  logger?: Logger;
  /** Served at GET /v1/metrics; allocation latency is recorded here. */
  metrics?: Metrics;
  /** Request bounds from the `[api]` config table (`config.api`); any left out take DEFAULT_API_LIMITS. */
  limits?: Partial<ApiLimits>;
  /** Records of processes started through the API; default: a registry of this app's own. */
  processes?: ProcessRegistry;
  /** Serves POST /v1/run; without it that route answers 404 NOT_FOUND. */
  runner?: CodeRunner;
  /** Serves /v1/snapshots and /v1/vms/{id}/snapshots|rollback; without it they answer 501 SNAPSHOT_UNSUPPORTED. */
  liveSnapshots?: import('../snapshot/live/index.js').LiveSnapshotService;
  /** The Terraphim API (/health, /api/*): vm_type aliases, agents' vm_type, live snapshots, history store; all optional (the daemon fills them from config `[terraphim]`). */
  terraphim?: import('./terraphim/index.js').TerraphimOptions;
  /** Serves GET /v1/events (Server-Sent Events); without it that route answers 404 NOT_FOUND. */
  events?: import('../events/index.js').EventBus;
  /** Serves GET /v1/alerts, /v1/alerts/rules and /v1/alerts/deliveries (the daemon's AlertMonitor); without it they answer 404 NOT_FOUND. */
  alerts?: import('../alerts/index.js').AlertsView;
  /** Cluster mode (`[cluster]`): routing to other nodes, placement, GET /v1/cluster; without it the API serves this host alone. */
  cluster?: import('../cluster/forward.js').ClusterApi;
}
