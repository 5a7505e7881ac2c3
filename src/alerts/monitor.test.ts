import { afterEach, describe, expect, it } from 'vitest';
import { EventBus, type BusEvent } from '../events/index.js';
import { AlertRepository, openDatabase, type Db } from '../store/index.js';
import { AlertMonitor } from './monitor.js';
import { AlertEvaluator } from './evaluator.js';
import { effectiveRules, profileTargetMs, type EffectiveRule, type RuleName } from './rules.js';
import type { HostReader } from './host.js';
import { parseMeminfo } from './host.js';
import type { AlertsConfig } from '../config/types.js';

const rulesMap = (overrides: AlertsConfig['rules'] = {}) => new Map(effectiveRules({ rules: overrides }).map((r) => [r.name, r] as [RuleName, EffectiveRule]));

describe('AlertEvaluator (fake clock)', () => {
  const empty = (value: number) => [{ rule: 'pool_empty' as const, labels: { pool: 'p' }, value, threshold: 0, summary: `ready ${value}` }];

  it('goes pending, fires once held for `for`, and resolves when the breach ends', () => {
    const ev = new AlertEvaluator(rulesMap({ pool_empty: { forMs: 1500 } }));
    const first = ev.evaluate(1000, empty(0));
    expect(first.map((t) => [t.from, t.alert.state])).toEqual([['inactive', 'pending']]);
    expect(ev.evaluate(2000, empty(0))).toEqual([]); // 1000 ms held: still pending
    const fired = ev.evaluate(2500, empty(0));
    expect(fired.map((t) => [t.from, t.alert.state, t.alert.firedAt])).toEqual([['pending', 'firing', 2500]]);
    expect(fired[0].alert.id).toBe(first[0].alert.id);
    expect(ev.evaluate(3000, empty(0))).toEqual([]); // firing stays firing without a new event
    const resolved = ev.evaluate(4000, empty(1));
    expect(resolved.map((t) => [t.from, t.alert.state, t.alert.resolvedAt, t.alert.value])).toEqual([['firing', 'resolved', 4000, 1]]);
    expect(ev.list()).toEqual([]);
    // A new breach is a new alert.
    const again = ev.evaluate(5000, empty(0));
    expect(again[0].alert.id).not.toBe(first[0].alert.id);
  });

  it('resolves a pending alert whose breach ends before `for`, and fires at once with for 0', () => {
    const ev = new AlertEvaluator(rulesMap({ pool_empty: { forMs: 10_000 } }));
    ev.evaluate(0, empty(0));
    expect(ev.evaluate(500, empty(2)).map((t) => [t.from, t.alert.state])).toEqual([['pending', 'resolved']]);
    const now = new AlertEvaluator(rulesMap({ pool_empty: { forMs: 0 } }));
    expect(now.evaluate(0, empty(0)).map((t) => [t.from, t.alert.state])).toEqual([['inactive', 'firing']]);
  });

  it('resolves alerts that are no longer measured, and ignores disabled rules', () => {
    const ev = new AlertEvaluator(rulesMap({ pool_empty: { forMs: 0 } }));
    ev.evaluate(0, empty(0));
    const gone = ev.evaluate(1000, []);
    expect(gone.map((t) => t.alert.state)).toEqual(['resolved']);
    expect(gone[0].alert.summary).toMatch(/no longer measured/);
    const off = new AlertEvaluator(rulesMap({ pool_empty: { enabled: false } }));
    expect(off.evaluate(0, empty(0))).toEqual([]);
  });

  it('compares in the rule direction: below for host memory', () => {
    const ev = new AlertEvaluator(rulesMap({ host_memory_low: { forMs: 0, threshold: 10 } }));
    const obs = (value: number) => [{ rule: 'host_memory_low' as const, labels: {}, value, threshold: 10, summary: '' }];
    expect(ev.evaluate(0, obs(50))).toEqual([]);
    expect(ev.evaluate(1, obs(9.5)).map((t) => t.alert.state)).toEqual(['firing']);
  });
});

describe('profile targets', () => {
  it('uses target_ms, else 2 s at sub2second (and restores at instant), else none', () => {
    expect(profileTargetMs({ bootLevel: 'standard', targetMs: 800 }, 'boot')).toBe(800);
    expect(profileTargetMs({ bootLevel: 'sub2second' }, 'boot')).toBe(2000);
    expect(profileTargetMs({ bootLevel: 'instant' }, 'restore')).toBe(2000);
    expect(profileTargetMs({ bootLevel: 'instant' }, 'boot')).toBeUndefined();
    expect(profileTargetMs({ bootLevel: 'standard' }, 'restore')).toBeUndefined();
  });
});

describe('parseMeminfo', () => {
  it('reads MemAvailable and MemTotal in bytes', () => {
    expect(parseMeminfo('MemTotal:       2000 kB\nMemFree:     10 kB\nMemAvailable:    500 kB\n')).toEqual({ availableBytes: 512_000, totalBytes: 2_048_000 });
    expect(parseMeminfo('MemTotal: 2000 kB\n')).toBeNull();
  });
});

describe('AlertMonitor', () => {
  let db: Db | undefined;
  let monitor: AlertMonitor | undefined;
  afterEach(async () => {
    await monitor?.stop(0);
    db?.close();
  });

  const setup = (alerts: Partial<AlertsConfig>, host: Partial<HostReader> = {}) => {
    let now = 1_000_000;
    const bus = new EventBus(256);
    db = openDatabase(':memory:');
    const repo = new AlertRepository(db);
    const seen: BusEvent[] = [];
    bus.subscribe((e) => {
      if (e.type === 'alert') seen.push(e);
    });
    monitor = new AlertMonitor({
      bus,
      alerts: { enabled: true, evalIntervalMs: 60_000, rules: {}, webhooks: [], ...alerts },
      profiles: { fast: { bootLevel: 'sub2second' }, slow: { bootLevel: 'standard' } },
      dataDir: '/data',
      repo,
      now: () => now,
      host: { memory: () => null, disk: () => null, ...host },
    });
    monitor.start();
    return { bus, repo, seen, advance: (ms: number) => (now += ms) };
  };

  it('fires pool_empty for a pool held empty past `for`, stores it, publishes each change, and resolves on refill', () => {
    const { bus, repo, seen, advance } = setup({ rules: { pool_empty: { forMs: 1500 } } });
    bus.publish('pool', { pool: 'default', ready: 0, booting: 0, allocated: 1, target: 1 });
    monitor!.evaluate();
    advance(1000);
    monitor!.evaluate();
    expect(monitor!.list('active').map((a) => a.state)).toEqual(['pending']);
    advance(600);
    monitor!.evaluate();
    const [firing] = monitor!.list('firing');
    expect(firing).toMatchObject({ rule: 'pool_empty', labels: { pool: 'default' }, value: 0, threshold: 0 });
    bus.publish('pool', { pool: 'default', ready: 1, booting: 0, allocated: 0, target: 1 });
    advance(1000);
    monitor!.evaluate();
    expect(monitor!.list('active')).toEqual([]);
    expect(repo.get(firing.id)).toMatchObject({ state: 'resolved', value: 1 });
    expect(seen.map((e) => (e.data as { state: string }).state)).toEqual(['pending', 'firing', 'resolved']);
    expect(new Set(seen.map((e) => (e.data as { id: string }).id)).size).toBe(1);
  });

  it('judges boots against the profile target and allocation p99 only with enough samples', () => {
    const { bus } = setup({ rules: { allocation_p99: { forMs: 0, threshold: 20 } } });
    const ready = (profile: string, ms: number) => bus.publish('vm.ready', { vm_id: 'vm-1', profile, driver: 'qemu', kind: 'boot', ms, phases: [] });
    ready('fast', 2500);
    ready('slow', 9000); // no target: not judged
    for (let i = 0; i < 19; i++) bus.publish('allocation', { pool: 'default', vm_id: 'vm', ms: 50 });
    const t1 = monitor!.evaluate();
    expect(t1.map((t) => [t.alert.rule, t.alert.labels, t.alert.value])).toEqual([['boot_time', { profile: 'fast' }, 1.25]]);
    bus.publish('allocation', { pool: 'default', vm_id: 'vm', ms: 50 });
    const t2 = monitor!.evaluate();
    expect(t2.map((t) => [t.alert.rule, t.alert.state, t.alert.value])).toEqual([['allocation_p99', 'firing', 50]]);
  });

  it('computes the allocation failure ratio and the VM failure rate over the window', () => {
    const { bus, advance } = setup({ rules: { allocation_failure_ratio: { forMs: 0 }, vm_failure_rate: { forMs: 0, threshold: 0.5 } } });
    for (let i = 0; i < 8; i++) bus.publish('allocation', { pool: 'p', vm_id: 'vm', ms: 3 });
    for (let i = 0; i < 2; i++) bus.publish('allocation.failed', { pool: 'p', code: 'POOL_EXHAUSTED', ms: 10 });
    for (let i = 0; i < 3; i++) bus.publish('vm.failed', { driver: 'qemu', code: 'VMM_EXITED' });
    const t = monitor!.evaluate();
    expect(Object.fromEntries(t.map((x) => [x.alert.rule, x.alert.value]))).toEqual({ allocation_failure_ratio: 0.2, vm_failure_rate: 0.6 });
    // Five minutes later the window is empty: both resolve.
    advance(5 * 60_000 + 1);
    expect(monitor!.evaluate().map((x) => x.alert.state)).toEqual(['resolved', 'resolved']);
  });

  it('watches host memory and the data dir disk', () => {
    setup(
      { rules: { host_memory_low: { forMs: 0 }, disk_free_low: { forMs: 0, threshold: 20 } } },
      { memory: () => ({ availableBytes: 5, totalBytes: 100 }), disk: (path) => (path === '/data' ? { availableBytes: 30, totalBytes: 100 } : null) },
    );
    const t = monitor!.evaluate();
    expect(t.map((x) => [x.alert.rule, x.alert.labels, x.alert.value])).toEqual([['host_memory_low', {}, 5]]);
  });

  it('resolves alerts an earlier daemon left firing, and refuses an unset secret_env', () => {
    let now = 0;
    db = openDatabase(':memory:');
    const repo = new AlertRepository(db);
    repo.upsert({
      id: 'a1',
      rule: 'pool_empty',
      labels: {},
      state: 'firing',
      value: 0,
      threshold: 0,
      summary: 's',
      startedAt: 'x',
      firedAt: 'x',
      resolvedAt: null,
      updatedAt: 'x',
    });
    const base = { bus: new EventBus(), profiles: {}, dataDir: '/d', repo, now: () => now };
    monitor = new AlertMonitor({ ...base, alerts: { enabled: true, evalIntervalMs: 1000, rules: {}, webhooks: [] } });
    monitor.start();
    expect(repo.get('a1')).toMatchObject({ state: 'resolved', summary: 's (daemon restarted)' });
    now++;
    const webhook = { url: 'http://127.0.0.1:9/', secret: null, secretEnv: 'NOPE_SECRET', events: ['alert'], timeoutMs: 100, maxAttempts: 1, queueSize: 1 };
    expect(() => new AlertMonitor({ ...base, env: {}, alerts: { enabled: true, evalIntervalMs: 1000, rules: {}, webhooks: [webhook] } })).toThrow(
      /alerts\.webhooks\.0\.secret_env names the environment variable NOPE_SECRET, which is not set/,
    );
  });
});
