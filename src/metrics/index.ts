/**
 * Prometheus metrics of the daemon: boot and restore phase durations, VM
 * creations and failures, allocation latency, and pool gauges read at scrape
 * time. Owns its registry (not prom-client's global one, so tests and
 * several daemons in one process do not collide). Other modules report
 * through the small functions here; this module imports no HTTP code.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PoolStatus } from '../pool/index.js';

/** Phase durations span sub-millisecond QMP calls to multi-second TCG boots. */
const PHASE_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Allocation targets are p50 <= 5 ms and p99 <= 20 ms: resolve that range finely. */
const ALLOCATION_BUCKETS_S = [0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.05, 0.1, 0.5, 1, 5, 10];

export interface Metrics {
  readonly registry: Registry;
  /** Records every phase of a VM that became ready (kind: boot or restore). */
  vmReady(vm: { driverName: string; profileName: string; createdBy: 'boot' | 'restore'; bootPhases: ReadonlyArray<{ name: string; ms: number }> }): void;
  /** Records a creation that failed, by error code. */
  vmFailed(driver: string, code: string): void;
  /** Records one allocation's latency (request to ready VM). */
  allocation(pool: string, ms: number): void;
  /** Prometheus text exposition of everything. */
  render(): Promise<string>;
  contentType: string;
}

/** Creates the metrics; `pools` is read at each scrape for the pool gauges. */
export function createMetrics(pools: () => PoolStatus[]): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tfc_process_' });
  const phase = new Histogram({
    name: 'tfc_vm_phase_seconds',
    help: 'Duration of each boot or restore phase of VMs that became ready',
    labelNames: ['kind', 'phase', 'driver'],
    buckets: PHASE_BUCKETS_S,
    registers: [registry],
  });
  const ready = new Histogram({
    name: 'tfc_vm_ready_seconds',
    help: 'Time from the start of a boot or restore to a ready agent',
    labelNames: ['kind', 'driver', 'profile'],
    buckets: PHASE_BUCKETS_S,
    registers: [registry],
  });
  const failures = new Counter({
    name: 'tfc_vm_create_failures_total',
    help: 'VM creations (boot or restore) that failed, by error code',
    labelNames: ['driver', 'code'],
    registers: [registry],
  });
  const allocation = new Histogram({
    name: 'tfc_allocation_seconds',
    help: 'Allocation latency: request to a resumed VM whose agent answered',
    labelNames: ['pool'],
    buckets: ALLOCATION_BUCKETS_S,
    registers: [registry],
  });
  for (const field of ['ready', 'booting', 'allocated', 'target'] as const) {
    // Registered with the registry; read at scrape time.
    new Gauge({
      name: `tfc_pool_${field}`,
      help: `Pool ${field === 'target' ? 'target size (follows demand)' : `VMs ${field}`}`,
      labelNames: ['pool'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of pools()) this.set({ pool: p.name }, p[field]);
      },
    });
  }
  return {
    registry,
    vmReady(vm) {
      let total = 0;
      for (const p of vm.bootPhases) {
        phase.observe({ kind: vm.createdBy, phase: p.name, driver: vm.driverName }, p.ms / 1000);
        total += p.ms;
      }
      ready.observe({ kind: vm.createdBy, driver: vm.driverName, profile: vm.profileName }, total / 1000);
    },
    vmFailed(driver, code) {
      failures.inc({ driver, code });
    },
    allocation(pool, ms) {
      allocation.observe({ pool }, ms / 1000);
    },
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
