import { afterEach, describe, expect, it } from 'vitest';
import type { PoolConfig, Profile } from '../config/index.js';
import { Pool, type PoolBackend } from '../pool/pool.js';
import type { Vm } from '../vm/vm.js';
import { EventBus, type BusEvent } from './bus.js';
import { PoolEventPublisher, type PoolCounts } from './pool-events.js';
import { vmEventObserver } from './vm-events.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (cond: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(2);
  }
};

/** Everything published on `bus` from now on. */
function record(bus: EventBus): BusEvent[] {
  const seen: BusEvent[] = [];
  bus.subscribe((e) => seen.push(e));
  return seen;
}

describe('PoolEventPublisher', () => {
  let publisher: PoolEventPublisher | undefined;
  afterEach(() => publisher?.close());

  it('coalesces a burst of changes into events at most every minIntervalMs, each with the counts of its moment', async () => {
    const bus = new EventBus();
    const seen = record(bus);
    const counts: PoolCounts = { name: 'web', ready: 0, booting: 0, allocated: 0, target: 2 };
    publisher = new PoolEventPublisher(bus, () => [{ ...counts }], { minIntervalMs: 100, pollMs: 0 });
    const started = performance.now();
    // 600 ms of a busy pool: a change every millisecond or so.
    while (performance.now() - started < 600) {
      counts.ready = (counts.ready + 1) % 7;
      counts.allocated = Math.floor((performance.now() - started) / 50);
      publisher.changed('web');
      await sleep(1);
    }
    const last = { ...counts };
    await sleep(250);
    const pool = seen.filter((e) => e.type === 'pool');
    // About 600/100 + 1 events, never two within the interval.
    expect(pool.length).toBeGreaterThanOrEqual(3);
    expect(pool.length).toBeLessThanOrEqual(9);
    const times = pool.map((e) => Date.parse(e.time));
    for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeGreaterThanOrEqual(95);
    // The last event carries the final counts, not those of the change that scheduled it.
    expect(pool.at(-1)!.data).toEqual({ pool: 'web', ready: last.ready, booting: 0, allocated: last.allocated, target: 2 });
  });

  it('publishes only when the counts differ from the last event, and nothing after close', async () => {
    const bus = new EventBus();
    const seen = record(bus);
    const counts = { name: 'web', ready: 1, booting: 0, allocated: 0, target: 1 };
    publisher = new PoolEventPublisher(bus, () => [counts], { minIntervalMs: 10, pollMs: 0 });
    publisher.changed('web');
    await sleep(30);
    publisher.changed('web');
    await sleep(30);
    expect(seen.map((e) => e.type)).toEqual(['pool']);
    // Nobody signals, but the target drifted: the poll sees it.
    publisher.close();
    publisher = new PoolEventPublisher(bus, () => [counts], { minIntervalMs: 10, pollMs: 20 });
    await sleep(50);
    expect(seen.length).toBe(2); // the new publisher's first look
    counts.target = 3;
    await until(() => seen.length === 3);
    expect(seen[2].data).toMatchObject({ target: 3 });
    publisher.close();
    counts.target = 4;
    publisher.changed('web');
    publisher.allocated('web', 'vm-1', 1);
    await sleep(50);
    expect(seen.length).toBe(3);
  });
});

describe('vmEventObserver', () => {
  it('publishes transitions, ready VMs with their phases and total, and failures', () => {
    const bus = new EventBus();
    const seen = record(bus);
    const o = vmEventObserver(bus);
    o.vmState('vm-1', 'creating', 'booting', 'cold boot');
    o.vmState('vm-1', 'booting', 'running');
    o.vmReady({
      id: 'vm-1',
      profileName: 'minimal',
      driverName: 'qemu',
      createdBy: 'restore',
      bootPhases: [
        { name: 'spawn_vmm', ms: 10.12345 },
        { name: 'agent_ready', ms: 2.5 },
      ],
    });
    o.vmFailed('qemu', 'VM_BOOT_TIMEOUT');
    expect(seen.map((e) => [e.type, e.data])).toEqual([
      ['vm.state', { vm_id: 'vm-1', from: 'creating', to: 'booting', reason: 'cold boot' }],
      ['vm.state', { vm_id: 'vm-1', from: 'booting', to: 'running' }],
      [
        'vm.ready',
        {
          vm_id: 'vm-1',
          profile: 'minimal',
          driver: 'qemu',
          kind: 'restore',
          ms: 12.623,
          phases: [
            { name: 'spawn_vmm', ms: 10.123 },
            { name: 'agent_ready', ms: 2.5 },
          ],
        },
      ],
      ['vm.failed', { driver: 'qemu', code: 'VM_BOOT_TIMEOUT' }],
    ]);
  });
});

// A real Pool with stand-in VMs, reporting to a real publisher: what a pool does is what the bus says.
class StandInVm {
  static next = 0;
  readonly id = `vm-ev-${StandInVm.next++}`;
  state = 'running';
  readonly bootPhases = [{ name: 'restore', ms: 1 }];
  onFailed() {
    return () => undefined;
  }
  async pause() {}
  async resume() {}
  get agent() {
    return { ping: async () => ({ uptimeMs: 1 }) };
  }
}

const backend: PoolBackend = {
  async create() {
    await sleep(2);
    return new StandInVm() as unknown as Vm;
  },
  async destroy() {},
};

function poolConfig(over: Partial<PoolConfig> = {}): PoolConfig {
  return {
    name: 'p',
    profile: 'minimal',
    min: 1,
    max: 1,
    target: 1,
    mode: 'fresh',
    prewarmState: 'running',
    rewarm: false,
    refillConcurrency: 1,
    strategy: 'first-available',
    strategySeed: 1,
    maxUses: 100,
    maxAgeMs: 3_600_000,
    healthIntervalMs: 3_600_000,
    allocateTimeoutMs: 1000,
    leaseMs: 600_000,
    maxLeaseMs: 3_600_000,
    ...over,
  };
}

describe('a pool reporting to the bus', () => {
  let pool: Pool | undefined;
  let publisher: PoolEventPublisher | undefined;
  afterEach(async () => {
    await pool?.stop();
    publisher?.close();
  });

  it('publishes allocations, failed allocations, releases, lease expiries and count changes', async () => {
    const bus = new EventBus();
    const seen = record(bus);
    publisher = new PoolEventPublisher(bus, () => (pool ? [pool.status()] : []), { minIntervalMs: 20, pollMs: 0 });
    pool = new Pool(poolConfig(), { name: 'minimal' } as Profile, backend, undefined, undefined, publisher);
    pool.start();
    await until(() => pool!.status().ready === 1);
    await until(() => seen.some((e) => e.type === 'pool' && (e.data as { ready: number }).ready === 1));

    const a = await pool.allocate();
    // max 1: the next allocation cannot be served before its 30 ms deadline.
    await expect(pool.allocate({ timeoutMs: 30 })).rejects.toMatchObject({ code: 'POOL_EXHAUSTED' });
    await expect(pool.allocate({ ttlMs: -5 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await pool.release(a.member.vm.id);
    await until(() => pool!.status().ready === 1);
    const b = await pool.allocate({ ttlMs: 20 });
    await until(() => seen.some((e) => e.type === 'release' && (e.data as { vm_id: string }).vm_id === b.member.vm.id));

    const of = (type: string) => seen.filter((e) => e.type === type).map((e) => e.data);
    expect(of('allocation')).toEqual([
      { pool: 'p', vm_id: a.member.vm.id, ms: a.allocationMs },
      { pool: 'p', vm_id: b.member.vm.id, ms: b.allocationMs },
    ]);
    expect(of('allocation.failed').map((d) => (d as { code: string }).code)).toEqual(['POOL_EXHAUSTED', 'INVALID_ARGUMENT']);
    expect((of('allocation.failed')[0] as { ms: number }).ms).toBeGreaterThanOrEqual(25);
    expect(of('release')).toEqual([
      { pool: 'p', vm_id: a.member.vm.id, reason: 'released (fresh pool)' },
      { pool: 'p', vm_id: b.member.vm.id, reason: 'lease expired' },
    ]);
    // The allocation showed up in the counts.
    expect(of('pool')).toContainEqual({ pool: 'p', ready: 0, booting: expect.any(Number), allocated: 1, target: 1 });
    // Ids are in publish order.
    expect(seen.map((e) => e.id)).toEqual(seen.map((_, i) => seen[0].id + i));
  });

  it('an activity listener that throws does not fail allocations or releases', async () => {
    pool = new Pool(poolConfig(), { name: 'minimal' } as Profile, backend, undefined, undefined, {
      allocated: () => {
        throw new Error('listener bug');
      },
      released: () => {
        throw new Error('listener bug');
      },
      changed: () => {
        throw new Error('listener bug');
      },
    });
    pool.start();
    await until(() => pool!.status().ready === 1);
    const a = await pool.allocate();
    await pool.release(a.member.vm.id);
    expect(pool.member(a.member.vm.id)).toBeUndefined();
  });
});
