import type { BusEvent, PoolCounts } from '../events/index.js';
import type { Observation } from './evaluator.js';
import type { HostReader } from './host.js';
import { MIN_P99_SAMPLES, MIN_RATIO_ATTEMPTS, profileTargetMs, WINDOW_MS, type EffectiveRule, type RuleName } from './rules.js';
import { quantile, SampleWindow } from './window.js';

/** Samples kept per pool, profile or driver: enough for a p99 over 5 minutes of a busy pool. */
const WINDOW_CAPACITY = 2048;
/** Distinct pools, profiles and drivers tracked (they come from the config, so this is a guard, not a limit). */
const MAX_KEYS = 256;

/** The pool counts the bus's `pool` events carry, also read directly at each evaluation. */
export type { PoolCounts };

export interface MeasurementSources {
  /** Profiles by name (bootLevel, targetMs) for the boot and restore targets. */
  profiles: Readonly<Record<string, { bootLevel: string; targetMs?: number }>>;
  /** data_dir: the disk rule watches its file system. */
  dataDir: string;
  host: HostReader;
  /** Live pool counts read at each evaluation; without it the last `pool` events are used. */
  readPools?: () => PoolCounts[];
}

/**
 * What the rules look at, collected from bus events into bounded windows
 * (per pool, profile or driver), plus host readings taken at evaluation.
 * `record` only appends to windows: it is cheap enough for a bus listener.
 */
export class Measurements {
  private readonly boots = new Map<string, SampleWindow>();
  private readonly restores = new Map<string, SampleWindow>();
  private readonly allocations = new Map<string, SampleWindow>();
  /** 1 per failed allocation request, 0 per successful one. */
  private readonly attempts = new Map<string, SampleWindow>();
  private readonly vmFailures = new Map<string, SampleWindow>();
  private readonly pools = new Map<string, PoolCounts>();

  constructor(
    private readonly sources: MeasurementSources,
    private readonly now: () => number,
  ) {}

  /** Takes one bus event into the windows (events of other types are ignored). */
  record(event: BusEvent): void {
    const t = this.now();
    switch (event.type) {
      case 'vm.ready': {
        const d = event.data as BusEvent<'vm.ready'>['data'];
        push(d.kind === 'boot' ? this.boots : this.restores, d.profile, t, d.ms);
        break;
      }
      case 'vm.failed': {
        const d = event.data as BusEvent<'vm.failed'>['data'];
        push(this.vmFailures, d.driver, t, 1);
        break;
      }
      case 'allocation': {
        const d = event.data as BusEvent<'allocation'>['data'];
        push(this.allocations, d.pool, t, d.ms);
        push(this.attempts, d.pool, t, 0);
        break;
      }
      case 'allocation.failed': {
        const d = event.data as BusEvent<'allocation.failed'>['data'];
        push(this.attempts, d.pool, t, 1);
        break;
      }
      case 'pool': {
        const d = event.data as BusEvent<'pool'>['data'];
        if (this.pools.has(d.pool) || this.pools.size < MAX_KEYS)
          this.pools.set(d.pool, { name: d.pool, ready: d.ready, booting: d.booting, allocated: d.allocated, target: d.target });
        break;
      }
      default:
        break;
    }
  }

  /** The observations of every enabled rule at `now`; a rule without data (too few samples, no target) observes nothing. */
  observe(rules: readonly EffectiveRule[]): Observation[] {
    const now = this.now();
    const since = now - WINDOW_MS;
    const enabled = new Set<RuleName>(rules.filter((r) => r.enabled).map((r) => r.name));
    const threshold = (name: RuleName) => rules.find((r) => r.name === name)!.threshold;
    const out: Observation[] = [];
    if (this.sources.readPools) {
      for (const p of this.sources.readPools()) this.pools.set(p.name, p);
    }
    for (const [kind, windows, rule] of [
      ['boot', this.boots, 'boot_time'],
      ['restore', this.restores, 'restore_time'],
    ] as const) {
      if (!enabled.has(rule)) continue;
      for (const [profile, w] of windows) {
        const p = Object.hasOwn(this.sources.profiles, profile) ? this.sources.profiles[profile] : undefined;
        const target = p ? profileTargetMs(p, kind) : undefined;
        const p90 = quantile(w.valuesSince(since), 0.9);
        if (target === undefined || p90 === undefined) continue;
        out.push({
          rule,
          labels: { profile },
          value: round(p90 / target, 3),
          threshold: threshold(rule),
          summary: `${kind} p90 of profile ${profile} over 5 min is ${Math.round(p90)} ms, target ${target} ms`,
        });
      }
    }
    if (enabled.has('allocation_p99')) {
      for (const [pool, w] of this.allocations) {
        const values = w.valuesSince(since);
        if (values.length < MIN_P99_SAMPLES) continue;
        const p99 = quantile(values, 0.99)!;
        const limit = threshold('allocation_p99');
        out.push({
          rule: 'allocation_p99',
          labels: { pool },
          value: round(p99, 2),
          threshold: limit,
          summary: `allocation p99 of pool ${pool} over 5 min is ${round(p99, 1)} ms (limit ${limit} ms, ${values.length} allocations)`,
        });
      }
    }
    if (enabled.has('pool_empty')) {
      for (const p of this.pools.values()) {
        if (p.target <= 0) continue;
        const limit = threshold('pool_empty');
        out.push({
          rule: 'pool_empty',
          labels: { pool: p.name },
          value: p.ready,
          threshold: limit,
          summary: `pool ${p.name} has ${p.ready} ready VMs (target ${p.target}, ${p.booting} booting, ${p.allocated} allocated)`,
        });
      }
    }
    if (enabled.has('allocation_failure_ratio')) {
      for (const [pool, w] of this.attempts) {
        const values = w.valuesSince(since);
        if (values.length < MIN_RATIO_ATTEMPTS) continue;
        const failed = values.reduce((a, b) => a + b, 0);
        const limit = threshold('allocation_failure_ratio');
        out.push({
          rule: 'allocation_failure_ratio',
          labels: { pool },
          value: round(failed / values.length, 4),
          threshold: limit,
          summary: `${failed} of ${values.length} allocation requests to pool ${pool} failed in 5 min (limit ${limit})`,
        });
      }
    }
    if (enabled.has('vm_failure_rate')) {
      for (const [driver, w] of this.vmFailures) {
        const count = w.valuesSince(since).length;
        const perMinute = count / (WINDOW_MS / 60_000);
        const limit = threshold('vm_failure_rate');
        out.push({
          rule: 'vm_failure_rate',
          labels: { driver },
          value: round(perMinute, 3),
          threshold: limit,
          summary: `${count} ${driver} VM creations failed in 5 min (${round(perMinute, 2)}/min, limit ${limit}/min)`,
        });
      }
    }
    if (enabled.has('host_memory_low')) {
      const m = this.sources.host.memory();
      if (m) {
        const pct = (100 * m.availableBytes) / m.totalBytes;
        const limit = threshold('host_memory_low');
        out.push({
          rule: 'host_memory_low',
          labels: {},
          value: round(pct, 2),
          threshold: limit,
          summary: `${mib(m.availableBytes)} MiB of ${mib(m.totalBytes)} MiB host memory available (${round(pct, 1)}%, limit ${limit}%)`,
        });
      }
    }
    if (enabled.has('disk_free_low')) {
      const d = this.sources.host.disk(this.sources.dataDir);
      if (d) {
        const pct = (100 * d.availableBytes) / d.totalBytes;
        const limit = threshold('disk_free_low');
        out.push({
          rule: 'disk_free_low',
          labels: { path: this.sources.dataDir },
          value: round(pct, 2),
          threshold: limit,
          summary: `${mib(d.availableBytes)} MiB free of ${mib(d.totalBytes)} MiB on ${this.sources.dataDir} (${round(pct, 1)}%, limit ${limit}%)`,
        });
      }
    }
    return out;
  }
}

function push(map: Map<string, SampleWindow>, key: string, t: number, value: number): void {
  let w = map.get(key);
  if (!w) {
    if (map.size >= MAX_KEYS) return;
    w = new SampleWindow(WINDOW_CAPACITY);
    map.set(key, w);
  }
  w.push(t, value);
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function mib(bytes: number): number {
  return Math.round(bytes / 1048576);
}
