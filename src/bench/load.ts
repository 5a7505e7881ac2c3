/**
 * Allocation under load (issue 11, part 2), measured, not assumed:
 *
 * 1. refill capacity: clones of the default profile's golden snapshot
 *    restored `refill_concurrency` at a time (the default pool's), kept
 *    alive until the batch is done: restores per second, and per core
 *    (os.availableParallelism());
 * 2. an in-process daemon (startDaemon) whose default pool follows demand,
 *    and clients arriving as a Poisson process at `rateFraction` x that
 *    capacity, each doing allocate -> exec `true` -> release through HTTP:
 *    allocation latency (request to response, as the client sees it)
 *    percentiles after a warm-up, failures.
 *
 * Part of the `limits` suite of `tfc bench`.
 *
 * It also reports the CPU time (this process and its VMMs) per restore and
 * per whole session: under TCG a session costs several restores (the first
 * command in a clone translates its code afresh), which bounds the rate a
 * machine can sustain below what the restore capacity suggests.
 *
 * Reports, does not judge (exit 0 whether or not the goal is met); every
 * figure comes from this run.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { resolveProfile, type Config } from '../config/index.js';
import { startDaemon } from '../daemon/index.js';
import { seededRandom } from '../pool/index.js';
import type { Vm } from '../vm/index.js';
import { cloneBatch, openBenchEnv, percentile, type BenchLog } from './common.js';

export interface LoadFiguresResult {
  /** Restores per second at the default pool's refill_concurrency. */
  capacityPerSec: number;
  /** Poisson arrival rate used: rateFraction x capacityPerSec. */
  ratePerSec: number;
  /** Allocation latency (ms, client side) after the warm-up. */
  p50: number;
  p99: number;
  max: number;
  /** Allocations measured (after the warm-up). */
  count: number;
  /** Sessions whose allocate, exec or release failed, or that could not start (too many in flight). */
  failures: number;
  restoresPerSecPerCore: number;
  /** In-daemon allocation p99 (Server-Timing `allocate`), ms. */
  serverP99: number;
  /** Allocations that had to wait for a VM (Server-Timing `wait` > 0). */
  waited: number;
  /**
   * How late the daemon's event loop ran during the measured arrivals (ms,
   * p99 and max; client and daemon share it): work that blocks it (spawning a
   * VMM, synchronous file and SQLite calls) delays every reply due meanwhile.
   */
  eventLoopDelayP99: number;
  eventLoopDelayMax: number;
  refillConcurrency: number;
  /** CPU time (ms; this process and its reaped VMMs) per restore of the capacity batch (destroy included) and per session of the load run. */
  cpuMsPerRestore: number;
  cpuMsPerSession: number;
  warmupMs: number;
  /** The pool's target, smoothed demand and refill time when arrivals stopped. */
  pool: { target: number; max: number; demandPerSec: number; refillMs: number | null };
}

/** Clients running at once beyond which an arrival is counted as a failure instead of started (the run is overloaded). */
const MAX_IN_FLIGHT = 256;
const TOKEN = 'bench-load-token-0123456789abcdef';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** CPU time used so far by this process and its reaped children (the VMMs), in ms; NaN without /proc. */
function cpuMs(): number {
  try {
    // Fields 14-17 of /proc/self/stat (after the parenthesised command): utime, stime, cutime, cstime in clock ticks (USER_HZ, 100 on Linux).
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    return fields.slice(11, 15).reduce((a, f) => a + Number(f), 0) * 10;
  } catch {
    return Number.NaN;
  }
}

/**
 * `count` clones restored `concurrency` at a time after one unmeasured
 * restore, all kept alive until the last is ready (so no destroy competes):
 * clones per second over the batch.
 */
async function refillCapacity(config: Config, concurrency: number, count: number): Promise<{ perSec: number; cpuMsPerRestore: number }> {
  const env = await openBenchEnv(config);
  const vms: Vm[] = [];
  let perSec = Number.NaN;
  let cpuBefore = Number.NaN;
  try {
    const profile = resolveProfile(env.config);
    await env.snapshots.ensure(profile);
    await env.service.destroy(await env.snapshots.clone(profile));
    cpuBefore = cpuMs();
    perSec = count / ((await cloneBatch(env, profile, count, concurrency, vms)) / 1000);
  } finally {
    await Promise.allSettled(vms.map((vm) => env.service.destroy(vm)));
    await env.close();
  }
  return { perSec, cpuMsPerRestore: (cpuMs() - cpuBefore) / count };
}

/** `allocate;dur=1.2, wait;dur=0` -> { allocate: 1.2, wait: 0 }. */
function serverTiming(header: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (header ?? '').split(',')) {
    const m = /^\s*([\w-]+);dur=([\d.]+)/.exec(part);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/**
 * Measures the refill capacity, then runs Poisson arrivals at
 * `rateFraction` x capacity for `durationMs` (plus a warm-up of a quarter
 * of that, at most 10 s, not counted) against an in-process daemon whose
 * default pool has max >= 16 (allocated VMs count against max). Throws when
 * the daemon cannot start; failed sessions are counted, not thrown.
 */
export async function loadFigures(
  config: Config,
  opts: {
    durationMs: number;
    rateFraction: number;
    /** Arrival times are reproducible for one seed (default 1). */
    seed?: number;
    /** Overrides the default pool's refill_concurrency (capacity is measured at it too). */
    refillConcurrency?: number;
    log?: BenchLog;
  },
): Promise<LoadFiguresResult> {
  if (!(opts.durationMs > 0) || !(opts.rateFraction > 0))
    throw new Error(`loadFigures needs durationMs > 0 and rateFraction > 0 (got ${opts.durationMs}, ${opts.rateFraction})`);
  const log = opts.log ?? (() => undefined);
  const base = config.pools.default;
  if (!base) throw new Error('the config has no pool "default"; the load benchmark allocates from it');
  const concurrency = opts.refillConcurrency ?? base.refillConcurrency;
  const batch = Math.max(6, 3 * concurrency);
  const { perSec: capacityPerSec, cpuMsPerRestore } = await refillCapacity(config, concurrency, batch);
  const cores = availableParallelism();
  log(
    `refill capacity: ${batch} restores ${concurrency} at a time, ${capacityPerSec.toFixed(2)} per second (${(capacityPerSec / cores).toFixed(2)} per core, ${cores} cores; ${cpuMsPerRestore.toFixed(0)} ms CPU per restore and destroy)`,
  );

  const ratePerSec = capacityPerSec * opts.rateFraction;
  const warmupMs = Math.min(10_000, opts.durationMs / 4);
  const daemonConfig: Config = {
    ...config,
    pools: { default: { ...base, prewarmState: 'running', refillConcurrency: concurrency, max: Math.max(base.max, 16) } },
  };
  const daemon = await startDaemon(daemonConfig, {
    listen: '127.0.0.1:0',
    env: { TFC_TOKEN: TOKEN },
    // error, not warn: refused allocations (POOL_EXHAUSTED) are counted in the table, not logged one by one.
    logger: pino({ level: 'error' }, pino.destination(2)),
  });
  const auth = { authorization: `Bearer ${TOKEN}` };
  const json = { ...auth, 'content-type': 'application/json' };
  const latencies: number[] = [];
  const serverMs: number[] = [];
  let waited = 0;
  let failures = 0;
  let inFlight = 0;
  const sessions = new Set<Promise<void>>();
  const session = async (measured: boolean) => {
    let vmId: string | undefined;
    try {
      const t = performance.now();
      const res = await fetch(`${daemon.url}/v1/pools/default/allocate`, { method: 'POST', headers: json, body: '{}' });
      const body = (await res.json()) as { vm?: { id: string } };
      const ms = performance.now() - t;
      if (res.status !== 201 || !body.vm) throw new Error(`allocate answered ${res.status}`);
      vmId = body.vm.id;
      if (measured) {
        latencies.push(ms);
        const timing = serverTiming(res.headers.get('server-timing'));
        serverMs.push(timing.allocate ?? Number.NaN);
        if ((timing.wait ?? 0) > 0) waited++;
      }
      const exec = await fetch(`${daemon.url}/v1/vms/${vmId}/exec`, { method: 'POST', headers: json, body: JSON.stringify({ cmd: ['true'] }) });
      const r = (await exec.json()) as { exit_code?: number };
      if (exec.status !== 200 || r.exit_code !== 0) throw new Error(`exec answered ${exec.status}, exit code ${r.exit_code}`);
    } catch {
      if (measured) failures++;
    } finally {
      if (vmId) {
        const del = await fetch(`${daemon.url}/v1/vms/${vmId}`, { method: 'DELETE', headers: auth }).catch(() => undefined);
        if (measured && del && del.status >= 300) failures++;
        await del?.arrayBuffer();
      }
    }
  };
  let status;
  let sessionCount = 0;
  const cpuBefore = cpuMs();
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  try {
    const pool = daemon.pools.get('default');
    const settled = () => pool.status().ready >= pool.status().target && pool.status().booting === 0;
    for (const deadline = Date.now() + 120_000; !settled() && Date.now() < deadline;) await sleep(20);
    log(`Poisson arrivals at ${ratePerSec.toFixed(2)} per second (${opts.rateFraction} x capacity) for ${opts.durationMs} ms after a ${warmupMs} ms warm-up`);
    const random = seededRandom(opts.seed ?? 1);
    const t0 = performance.now();
    const measureFrom = t0 + warmupMs;
    const end = measureFrom + opts.durationMs;
    for (let next = t0; ;) {
      next += (-Math.log(1 - random()) / ratePerSec) * 1000;
      if (next >= end) break;
      await sleep(next - performance.now());
      const measured = next >= measureFrom;
      if (measured) loopDelay.enable(); // from the first measured arrival (a no-op once enabled)
      if (inFlight >= MAX_IN_FLIGHT) {
        if (measured) failures++;
        continue;
      }
      inFlight++;
      sessionCount++;
      const job: Promise<void> = session(measured).finally(() => {
        inFlight--;
        sessions.delete(job);
      });
      sessions.add(job);
    }
    loopDelay.disable();
    const s = pool.status();
    status = { target: s.target, max: s.max, demandPerSec: s.demand_per_s, refillMs: s.refill_ms };
    await Promise.allSettled([...sessions]);
  } finally {
    await daemon.close();
  }
  // After close: every VMM of the run has exited and been reaped, so its CPU time is counted.
  const cpuMsPerSession = (cpuMs() - cpuBefore) / Math.max(1, sessionCount);
  const finite = serverMs.filter(Number.isFinite);
  return {
    capacityPerSec,
    ratePerSec,
    p50: latencies.length ? percentile(latencies, 50) : Number.NaN,
    p99: latencies.length ? percentile(latencies, 99) : Number.NaN,
    max: latencies.length ? Math.max(...latencies) : Number.NaN,
    count: latencies.length,
    failures,
    restoresPerSecPerCore: capacityPerSec / cores,
    serverP99: finite.length ? percentile(finite, 99) : Number.NaN,
    eventLoopDelayP99: loopDelay.count ? loopDelay.percentile(99) / 1e6 : Number.NaN,
    eventLoopDelayMax: loopDelay.count ? loopDelay.max / 1e6 : Number.NaN,
    waited,
    refillConcurrency: concurrency,
    cpuMsPerRestore,
    cpuMsPerSession,
    warmupMs,
    pool: status,
  };
}
