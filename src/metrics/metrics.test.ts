import { describe, expect, it } from 'vitest';
import type { PoolStatus } from '../pool/index.js';
import { createMetrics } from './index.js';

// What a Prometheus scrape of the daemon shows.

function pool(name: string, counts: Partial<PoolStatus>): PoolStatus {
  return {
    name,
    profile: 'minimal',
    mode: 'fresh',
    strategy: 'fixed',
    prewarm_state: 'paused',
    min: 0,
    max: 4,
    target: 2,
    ready: 0,
    booting: 0,
    allocated: 0,
    demand_per_s: 0,
    refill_ms: null,
    last_error: null,
    ...counts,
  } as PoolStatus;
}

describe('metrics', () => {
  it('records every phase of a ready VM and its total time to ready', async () => {
    const m = createMetrics(() => []);
    m.vmReady({
      driverName: 'qemu',
      profileName: 'minimal',
      createdBy: 'restore',
      bootPhases: [
        { name: 'restore-state', ms: 120 },
        { name: 'agent-ready', ms: 30 },
      ],
    });
    const text = await m.render();
    expect(text).toContain('tfc_vm_phase_seconds_count{kind="restore",phase="restore-state",driver="qemu"} 1');
    expect(text).toContain('tfc_vm_phase_seconds_sum{kind="restore",phase="agent-ready",driver="qemu"} 0.03');
    expect(text).toContain('tfc_vm_ready_seconds_sum{kind="restore",driver="qemu",profile="minimal"} 0.15');
    // 150 ms falls in the 0.25 s bucket, not the 0.1 s one.
    expect(text).toContain('tfc_vm_ready_seconds_bucket{le="0.1",kind="restore",driver="qemu",profile="minimal"} 0');
    expect(text).toContain('tfc_vm_ready_seconds_bucket{le="0.25",kind="restore",driver="qemu",profile="minimal"} 1');
  });

  it('counts failures by driver and error code', async () => {
    const m = createMetrics(() => []);
    m.vmFailed('qemu', 'BOOT_TIMEOUT');
    m.vmFailed('qemu', 'BOOT_TIMEOUT');
    m.vmFailed('firecracker', 'VMM_START_FAILED');
    const text = await m.render();
    expect(text).toContain('tfc_vm_create_failures_total{driver="qemu",code="BOOT_TIMEOUT"} 2');
    expect(text).toContain('tfc_vm_create_failures_total{driver="firecracker",code="VMM_START_FAILED"} 1');
  });

  it('resolves allocation latency in milliseconds (targets p50 <= 5 ms, p99 <= 20 ms)', async () => {
    const m = createMetrics(() => []);
    m.allocation('web', 2.5);
    m.allocation('web', 18);
    const text = await m.render();
    expect(text).toContain('tfc_allocation_seconds_bucket{le="0.003",pool="web"} 1');
    expect(text).toContain('tfc_allocation_seconds_bucket{le="0.02",pool="web"} 2');
    expect(text).toContain('tfc_allocation_seconds_count{pool="web"} 2');
  });

  it('reads pool gauges at scrape time, dropping pools that are gone', async () => {
    let pools = [pool('web', { ready: 3, booting: 1, allocated: 2, target: 5 }), pool('batch', { ready: 1 })];
    const m = createMetrics(() => pools);
    const first = await m.render();
    expect(first).toContain('tfc_pool_ready{pool="web"} 3');
    expect(first).toContain('tfc_pool_booting{pool="web"} 1');
    expect(first).toContain('tfc_pool_allocated{pool="web"} 2');
    expect(first).toContain('tfc_pool_target{pool="web"} 5');
    expect(first).toContain('tfc_pool_ready{pool="batch"} 1');
    pools = [pool('web', { ready: 0 })];
    const second = await m.render();
    expect(second).toContain('tfc_pool_ready{pool="web"} 0');
    expect(second).not.toContain('pool="batch"');
  });

  it('two daemons in one process keep separate registries, with process metrics under tfc_process_', async () => {
    const a = createMetrics(() => []);
    const b = createMetrics(() => []);
    a.vmFailed('qemu', 'X');
    expect(await b.render()).not.toContain('code="X"');
    expect(await a.render()).toMatch(/^tfc_process_process_cpu_user_seconds_total/m);
    expect(a.contentType).toMatch(/^text\/plain/);
  });
});
