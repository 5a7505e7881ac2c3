/**
 * Warm allocation through the REST API of an in-process daemon (the
 * `allocation` suite of `tfc bench`): request-to-response latency as the
 * client sees it, and the daemon's own allocation_ms, at several numbers of
 * concurrent clients.
 */
import { pino } from 'pino';
import type { Config } from '../config/index.js';
import { startDaemon } from '../daemon/index.js';
import type { BenchLog } from './common.js';

export interface AllocationPoint {
  clients: number;
  /** Client-side request-to-response times of the successful allocations, ms, in the order they finished. */
  latenciesMs: number[];
  /** The daemon's allocation_ms of the same allocations. */
  serverMs: number[];
  /** Allocations that did not answer 201 (or whose release failed). */
  failures: number;
  /** Wall time of the whole point, ms. */
  wallMs: number;
}

const TOKEN = 'bench-token-0123456789abcdef';
/** How long one allocation may wait for a VM before it counts as failed. */
const ALLOCATE_TIMEOUT_MS = 120_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * For each of `clients` (ascending, each >= 1), a fresh daemon on `config`
 * whose default pool keeps running VMs ready, and `requestsPerClient`
 * allocate -> release sessions per client:
 *
 * - one client: a pool of exactly 2 (min = max = target = 2), and each
 *   request only once the refill has finished (no restore competing for the
 *   cores): the warm path, "with the pool non-empty";
 * - N > 1 clients: a pool starting at 2 ready VMs (min 2, demand-following,
 *   max N + 2: allocated VMs count against max), the N clients each
 *   allocating and releasing in a closed loop, so later requests may wait for
 *   a refill: latency under contention.
 *
 * Allocations may wait up to ALLOCATE_TIMEOUT_MS for a VM (instead of the
 * pool's allocate_timeout_ms); one that is refused counts as a failure.
 *
 * Throws when a daemon cannot start, when the config has no pool "default",
 * or when every request of a point failed.
 */
export async function allocationLatency(
  config: Config,
  opts: { clients: number[]; requestsPerClient: (clients: number) => number; log?: BenchLog },
): Promise<AllocationPoint[]> {
  const log = opts.log ?? (() => undefined);
  const base = config.pools.default;
  if (!base) throw new Error('the config has no pool "default"; the allocation benchmark allocates from it');
  const points: AllocationPoint[] = [];
  for (const clients of [...opts.clients].sort((a, b) => a - b)) {
    if (!Number.isInteger(clients) || clients < 1) throw new Error(`client counts must be positive integers, got ${clients}`);
    const requests = opts.requestsPerClient(clients);
    // Allocations wait for a refill rather than being refused after the usual timeout: the wait is part of the latency measured.
    const pool = { ...(clients === 1 ? { min: 2, max: 2, target: 2 } : { min: 2, max: clients + 2, target: 2 }), allocateTimeoutMs: ALLOCATE_TIMEOUT_MS };
    const daemonConfig: Config = { ...config, pools: { ...config.pools, default: { ...base, ...pool, prewarmState: 'running' } } };
    const daemon = await startDaemon(daemonConfig, { listen: '127.0.0.1:0', env: { TFC_TOKEN: TOKEN }, logger: pino({ level: 'error' }, pino.destination(2)) });
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const point: AllocationPoint = { clients, latenciesMs: [], serverMs: [], failures: 0, wallMs: 0 };
    try {
      const status = () => daemon.pools.get('default').status();
      const settled = () => status().ready >= status().target && status().booting === 0;
      const waitSettled = async (ms: number) => {
        const deadline = Date.now() + ms;
        while (!settled() && Date.now() < deadline) await sleep(5);
      };
      await waitSettled(300_000);
      const session = async () => {
        const started = performance.now();
        const res = await fetch(`${daemon.url}/v1/pools/default/allocate`, { method: 'POST', headers, body: '{}' });
        const body = (await res.json()) as { vm?: { id: string }; allocation_ms?: number };
        const ms = performance.now() - started;
        if (res.status !== 201 || !body.vm) {
          point.failures++;
          return;
        }
        point.latenciesMs.push(ms);
        point.serverMs.push(body.allocation_ms ?? Number.NaN);
        const del = await fetch(`${daemon.url}/v1/vms/${body.vm.id}`, { method: 'DELETE', headers: { authorization: headers.authorization } });
        await del.arrayBuffer();
        if (del.status >= 300) point.failures++;
      };
      const t0 = performance.now();
      if (clients === 1) {
        for (let i = 0; i < requests; i++) {
          // "With the pool non-empty": wait until the refill has finished, then time one request.
          await waitSettled(60_000);
          await sleep(20);
          await session();
        }
      } else {
        await Promise.all(
          Array.from({ length: clients }, async () => {
            for (let i = 0; i < requests; i++) await session();
          }),
        );
      }
      point.wallMs = performance.now() - t0;
    } finally {
      await daemon.close();
    }
    if (point.latenciesMs.length === 0) throw new Error(`every allocation failed at ${clients} client(s) (${point.failures} failures)`);
    log(`${clients} client(s), ${clients * requests} allocations: ${point.failures} failed, wall ${(point.wallMs / 1000).toFixed(1)} s`);
    points.push(point);
  }
  return points;
}
