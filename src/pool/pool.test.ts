import { afterEach, describe, expect, it } from 'vitest';
import type { PoolConfig, Profile } from '../config/index.js';
import type { Vm } from '../vm/vm.js';
import { MAX_WAITING_ALLOCATIONS, Pool, type PoolBackend } from './pool.js';

// The pool's bookkeeping against stand-in VMs: real VMs are covered by
// test/pool-daemon.test.ts; here timing and failure can be controlled.
class StandInVm {
  static next = 0;
  readonly id = `vm-${StandInVm.next++}`;
  state: 'running' | 'paused' | 'failed' | 'stopped' = 'running';
  answers = true;
  private readonly failureListeners = new Set<(reason: string) => void>();
  onFailed(listener: (reason: string) => void) {
    this.failureListeners.add(listener);
    return () => this.failureListeners.delete(listener);
  }
  /** What Vm does when its VMM exits on its own. */
  die(reason: string) {
    this.state = 'failed';
    for (const l of this.failureListeners) l(reason);
  }
  readonly bootPhases: Array<{ name: string; ms: number }>;
  constructor(readyMs: number) {
    this.bootPhases = [{ name: 'restore', ms: readyMs }];
  }
  execs: string[][] = [];
  execExit = 0;
  async exec(request: { argv: readonly string[] }) {
    this.execs.push([...request.argv]);
    return { exitCode: this.execExit, signal: null, stdout: Buffer.alloc(0), stderr: Buffer.from('warmup said no'), timedOut: false };
  }
  async pause() {
    this.state = 'paused';
  }
  async resume() {
    this.state = 'running';
  }
  pings = 0;
  get agent() {
    return {
      ping: async () => {
        this.pings += 1;
        if (this.state !== 'running' || !this.answers) throw new Error('no answer');
        return { uptimeMs: 1 };
      },
    };
  }
}

function backend(options: { delayMs?: number; fail?: () => boolean; destroyError?: Error } = {}) {
  const created: StandInVm[] = [];
  const destroyed: string[] = [];
  const reasons = new Map<string, string>();
  const b: PoolBackend = {
    async create() {
      await new Promise((r) => setTimeout(r, options.delayMs ?? 5));
      if (options.fail?.()) throw new Error('restore failed');
      const vm = new StandInVm(10 + created.length);
      created.push(vm);
      return vm as unknown as Vm;
    },
    async destroy(vm, reason) {
      const s = vm as unknown as StandInVm;
      if (s.state !== 'failed') s.state = 'stopped';
      destroyed.push(vm.id);
      reasons.set(vm.id, reason);
      if (options.destroyError) throw options.destroyError;
    },
  };
  return { b, created, destroyed, reasons };
}

const profile = { name: 'minimal' } as Profile;
function config(over: Partial<PoolConfig> = {}): PoolConfig {
  return {
    name: 'p',
    profile: 'minimal',
    min: 1,
    max: 3,
    target: 2,
    mode: 'fresh',
    prewarmState: 'running',
    rewarm: true,
    refillConcurrency: 2,
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
const until = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 2));
  }
};

describe('Pool', () => {
  let pool: Pool | undefined;
  afterEach(async () => {
    await pool?.stop();
    pool = undefined;
  });

  it('fills to target, hands out ready VMs and refills back to target', async () => {
    const { b } = backend();
    pool = new Pool(config(), profile, b);
    pool.start();
    await until(() => pool!.status().ready === 2);
    const a = await pool.allocate();
    expect(a.member.status).toBe('allocated');
    await until(() => pool!.status().ready + pool!.status().booting >= 1 && pool!.status().allocated === 1);
    await pool.release(a.member.vm.id);
    expect(pool.member(a.member.vm.id)).toBeUndefined(); // fresh pools destroy released VMs
  });

  it('never gives one VM to two concurrent allocations', async () => {
    const { b } = backend();
    pool = new Pool(config({ max: 3, target: 3 }), profile, b);
    pool.start();
    await until(() => pool!.status().ready === 3);
    const got = await Promise.all([pool.allocate(), pool.allocate(), pool.allocate()]);
    expect(new Set(got.map((g) => g.member.vm.id)).size).toBe(3);
  });

  it('fails with POOL_EXHAUSTED after the deadline when empty at max, with a retry hint', async () => {
    const { b } = backend();
    pool = new Pool(config({ max: 1, target: 1 }), profile, b);
    pool.start();
    await pool.allocate();
    await expect(pool.allocate({ timeoutMs: 50 })).rejects.toMatchObject({
      code: 'POOL_EXHAUSTED',
      status: 503,
      details: expect.objectContaining({ retry_after_ms: expect.any(Number), allocated: 1, max: 1 }),
    });
  });

  it('a waiting allocation is served when a release frees capacity', async () => {
    const { b } = backend();
    pool = new Pool(config({ max: 1, target: 1 }), profile, b);
    pool.start();
    const first = await pool.allocate();
    const waiting = pool.allocate({ timeoutMs: 2000 });
    await pool.release(first.member.vm.id);
    const second = await waiting;
    expect(second.member.vm.id).not.toBe(first.member.vm.id);
  });

  it('replaces a VM whose VMM died or whose agent stopped answering', async () => {
    const { b, created } = backend();
    pool = new Pool(config({ target: 2 }), profile, b);
    pool.start();
    await until(() => pool!.status().ready === 2);
    created[0].state = 'failed';
    created[1].answers = false;
    await pool.healthCheck();
    await until(() => pool!.status().ready === 2 && created.length === 4);
    expect(pool.allMembers().map((m) => m.vm.id)).not.toContain(created[0].id);
  });

  it('skips a ready VM that fails its allocation check and hands out another', async () => {
    const { b, created } = backend();
    pool = new Pool(config({ target: 2 }), profile, b);
    pool.start();
    await until(() => pool!.status().ready === 2);
    created[0].answers = false;
    const a = await pool.allocate();
    expect(a.member.vm.id).toBe(created[1].id);
  });

  it('prewarms paused and resumes on allocation', async () => {
    const { b, created } = backend();
    pool = new Pool(config({ prewarmState: 'paused', target: 1 }), profile, b);
    pool.start();
    await until(() => pool!.status().ready === 1);
    expect(created[0].state).toBe('paused');
    const a = await pool.allocate();
    expect((a.member.vm as unknown as StandInVm).state).toBe('running');
  });

  it("rewarm: runs the profile's warmup in each new VM before offering it, unless rewarm is off", async () => {
    const warm = { ...profile, warmup: ['python3', '-c', 'import json'] } as Profile;
    const { b, created } = backend();
    pool = new Pool(config({ target: 1 }), warm, b);
    pool.start();
    await until(() => pool!.status().ready === 1);
    expect(created[0].execs).toEqual([['python3', '-c', 'import json']]);
    await pool.stop();
    const off = backend();
    pool = new Pool(config({ target: 1, rewarm: false }), warm, off.b);
    pool.start();
    await until(() => pool!.status().ready === 1);
    expect(off.created[0].execs).toEqual([]);
  });

  it('rewarm: a profile without warmup gets one `true` in each new VM, whose exit status does not keep it from being offered', async () => {
    const { b, created } = backend();
    const origCreate = b.create.bind(b);
    b.create = async (p) => {
      const vm = await origCreate(p);
      (vm as unknown as StandInVm).execExit = 1;
      return vm;
    };
    pool = new Pool(config({ target: 1, max: 1 }), profile, b);
    pool.start();
    await until(() => pool!.status().ready === 1);
    expect(created[0].execs).toEqual([['true']]);
    expect(pool.status().last_error).toBeNull();
    await pool.stop();
    const off = backend();
    pool = new Pool(config({ target: 1, rewarm: false }), profile, off.b);
    pool.start();
    await until(() => pool!.status().ready === 1);
    expect(off.created[0].execs).toEqual([]);
  });

  it('rewarm: behind demand (an allocation waiting) the default `true` is skipped and the VM offered at once; a profile warmup still runs', async () => {
    for (const [prof, want] of [
      [profile, []],
      [{ ...profile, warmup: ['python3', '-c', 'import json'] } as Profile, [['python3', '-c', 'import json']]],
    ] as const) {
      const { b, created } = backend({ delayMs: 20 });
      pool = new Pool(config({ target: 1, max: 2, refillConcurrency: 1 }), prof, b);
      pool.start();
      // Allocated before the first VM is ready: it waits, so the pool is behind when that VM is restored.
      const a = await pool.allocate();
      expect(a.waitMs).toBeGreaterThan(0);
      expect(created[0].execs).toEqual(want);
      await pool.stop();
    }
  });

  it('rewarm: a VM whose warmup fails is destroyed, not offered, and the error is kept', async () => {
    const warm = { ...profile, warmup: ['false'] } as Profile;
    const { b, created, destroyed } = backend();
    const origCreate = b.create.bind(b);
    b.create = async (p) => {
      const vm = await origCreate(p);
      (vm as unknown as StandInVm).execExit = 1;
      return vm;
    };
    pool = new Pool(config({ target: 1, max: 1 }), warm, b);
    pool.start();
    await until(() => destroyed.length >= 1);
    expect(destroyed[0]).toBe(created[0].id);
    expect(pool.status().ready).toBe(0);
    expect(pool.status().last_error).toBe(`prewarm of ${created[0].id} failed: warmup ["false"] exited with 1: warmup said no`);
  });

  it('reuse mode keeps a released VM for its owner and recycles after max_uses', async () => {
    const { b } = backend();
    pool = new Pool(config({ mode: 'reuse', maxUses: 2, target: 1, max: 3 }), profile, b);
    pool.start();
    await until(() => pool!.status().ready === 1);
    const a1 = await pool.allocate({ owner: 'alice' });
    await pool.release(a1.member.vm.id);
    const bob = await pool.allocate({ owner: 'bob' });
    expect(bob.member.vm.id).not.toBe(a1.member.vm.id);
    const a2 = await pool.allocate({ owner: 'alice' });
    expect(a2.member.vm.id).toBe(a1.member.vm.id);
    await pool.release(a2.member.vm.id); // second use: recycled
    expect(pool.member(a1.member.vm.id)).toBeUndefined();
  });

  it('follows its strategy (round-robin in creation order)', async () => {
    const { b } = backend();
    pool = new Pool(config({ mode: 'reuse', strategy: 'round-robin', max: 3, target: 3 }), profile, b);
    pool.start();
    await until(() => pool!.status().ready === 3);
    const seqs: number[] = [];
    // Held, not released: a reuse VM allocated without an owner is recycled on release.
    for (let i = 0; i < 3; i++) seqs.push((await pool.allocate()).member.seq);
    expect(seqs).toEqual([0, 1, 2]);
  });

  it('keeps retrying a failing refill and reports the error', async () => {
    let failing = true;
    const { b } = backend({ fail: () => failing });
    pool = new Pool(config({ target: 1 }), profile, b);
    pool.start();
    await until(() => pool!.status().last_error === 'restore failed');
    failing = false;
    await until(() => pool!.status().ready === 1, 3000);
    expect(pool.status().last_error).toBeNull();
  });

  it('stop destroys every VM and fails waiting allocations', async () => {
    const { b, destroyed } = backend();
    pool = new Pool(config({ max: 1, target: 1 }), profile, b);
    pool.start();
    const a = await pool.allocate();
    const waiting = pool.allocate({ timeoutMs: 5000 });
    await pool.stop();
    await expect(waiting).rejects.toMatchObject({ code: 'POOL_EXHAUSTED' });
    expect(destroyed).toContain(a.member.vm.id);
    pool = undefined;
  });

  it('frees the slot of an allocated VM that dies, at once, and serves the next allocation', async () => {
    const { b, created, reasons } = backend();
    pool = new Pool(config({ max: 1, target: 1, min: 1 }), profile, b);
    pool.start();
    const a = await pool.allocate();
    expect(pool.status().allocated).toBe(1);
    (a.member.vm as unknown as StandInVm).die('the VMM exited with code 0 (the guest powered off)');
    expect(pool.status().allocated).toBe(0);
    expect(pool.member(a.member.vm.id)).toBeUndefined();
    const next = await pool.allocate();
    expect(next.member.vm.id).not.toBe(a.member.vm.id);
    expect(created).toHaveLength(2);
    expect(reasons.get(a.member.vm.id)).toMatch(/^slot freed after the VM died: .*powered off/);
  });

  it('the health check frees the slot of an allocated VM found failed (no death notice)', async () => {
    const { b, destroyed } = backend();
    pool = new Pool(config({ max: 1, target: 1 }), profile, b);
    pool.start();
    const a = await pool.allocate();
    (a.member.vm as unknown as StandInVm).state = 'failed';
    expect(pool.status().allocated).toBe(1);
    await pool.healthCheck();
    expect(pool.status().allocated).toBe(0);
    await until(() => destroyed.includes(a.member.vm.id));
    expect((await pool.allocate()).member.vm.id).not.toBe(a.member.vm.id);
  });

  it('gives every allocation a lease: default lease_ms, a chosen ttl, refused above max_lease_ms', async () => {
    const { b } = backend();
    pool = new Pool(config({ leaseMs: 60_000, maxLeaseMs: 120_000 }), profile, b);
    pool.start();
    const before = Date.now();
    const a = await pool.allocate();
    expect(a.member.expiresAt! - before).toBeGreaterThanOrEqual(60_000);
    expect(a.member.expiresAt! - Date.now()).toBeLessThanOrEqual(60_000);
    const c = await pool.allocate({ ttlMs: 90_000 });
    expect(c.member.leaseMs).toBe(90_000);
    await expect(pool.allocate({ ttlMs: 120_001 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('max_lease_ms') });
    expect(pool.status().allocated).toBe(2); // a refused allocation takes nothing
    // keepalive renews from now with the allocation's TTL, or a new one; the same maximum applies.
    const renewed = pool.keepalive(c.member.vm.id);
    expect(renewed.leaseMs).toBe(90_000);
    expect(pool.keepalive(c.member.vm.id, 120_000).expiresAt! - a.member.expiresAt!).toBeGreaterThan(50_000);
    expect(() => pool!.keepalive(c.member.vm.id, 500_000)).toThrow(/above the maximum lease of pool p \(120000 ms/);
    expect(() => pool!.keepalive('vm-nope')).toThrow(expect.objectContaining({ code: 'VM_NOT_FOUND' }));
    await pool.release(a.member.vm.id);
    await until(() => pool!.status().ready >= 1);
    const idle = pool.allMembers().find((m) => m.status === 'ready')!;
    expect(() => pool!.keepalive(idle.vm.id)).toThrow(expect.objectContaining({ code: 'INVALID_STATE' }));
  });

  it('destroys a fresh VM whose lease ran out, frees its slot, and a keepalive spares another', async () => {
    const { b, reasons, destroyed } = backend();
    const events: string[] = [];
    pool = new Pool(config({ max: 2, target: 2 }), profile, b, undefined, (e) => events.push(e.kind));
    pool.start();
    const kept = await pool.allocate({ ttlMs: 20 });
    pool.keepalive(kept.member.vm.id, 600_000);
    const doomed = await pool.allocate({ ttlMs: 20 });
    await until(() => destroyed.includes(doomed.member.vm.id));
    // Both leases were due at about the same time; only the renewed one survived.
    expect(pool.member(kept.member.vm.id)?.status).toBe('allocated');
    expect(reasons.get(doomed.member.vm.id)).toBe('lease expired');
    expect(events).toContain('lease-expired');
    await until(() => pool!.status().ready === 1);
  });

  it('recycles a reuse VM whose lease ran out, and never parks a VM whose lease ends during its release', async () => {
    const { b, reasons, destroyed } = backend();
    pool = new Pool(config({ mode: 'reuse', max: 2, target: 1 }), profile, b);
    pool.start();
    const a = await pool.allocate({ owner: 'alice', ttlMs: 15 });
    await until(() => destroyed.includes(a.member.vm.id));
    expect(reasons.get(a.member.vm.id)).toBe('lease expired (recycled)');
    const c = await pool.allocate({ owner: 'carol', ttlMs: 600_000 });
    await pool.release(c.member.vm.id);
    expect(pool.member(c.member.vm.id)).toMatchObject({ status: 'ready', owner: 'carol', expiresAt: undefined });
  });

  it('recycles a reuse VM allocated without an owner instead of handing it on', async () => {
    const { b, reasons } = backend();
    pool = new Pool(config({ mode: 'reuse', max: 2, target: 1 }), profile, b);
    pool.start();
    const a = await pool.allocate();
    await pool.release(a.member.vm.id);
    expect(pool.member(a.member.vm.id)).toBeUndefined();
    expect(reasons.get(a.member.vm.id)).toBe('recycled (allocated without an owner)');
    const next = await pool.allocate();
    expect(next.member.vm.id).not.toBe(a.member.vm.id);
  });

  it('serves waiting allocations first come, first served', async () => {
    const { b } = backend();
    pool = new Pool(config({ max: 1, target: 1 }), profile, b);
    pool.start();
    const first = await pool.allocate();
    const order: string[] = [];
    const waiting = ['a', 'b', 'c'].map((name) => pool!.allocate({ owner: name, timeoutMs: 5000 }).then((got) => (order.push(name), got)));
    expect(pool.status().waiting).toBe(3);
    await pool.release(first.member.vm.id);
    const a = await waiting[0];
    await pool.release(a.member.vm.id);
    const b2 = await waiting[1];
    await pool.release(b2.member.vm.id);
    await waiting[2];
    expect(order).toEqual(['a', 'b', 'c']);
    expect(pool.status().waiting).toBe(0);
  });

  it('tells an allocation that cannot be served before its timeout at once, with when to retry from its place in line', async () => {
    const { b } = backend({ delayMs: 40 });
    pool = new Pool(config({ max: 8, min: 0, target: 1, refillConcurrency: 1 }), profile, b);
    pool.start();
    await until(() => pool!.status().ready === 1 && pool!.status().refill_ms !== null);
    await pool.allocate();
    const refillMs = pool.status().refill_ms!;
    // Nothing ready now, one refill at a time of about 40 ms: the 4th in line is expected after about 4 refills.
    const started = performance.now();
    const calls = [1, 2, 3, 4].map(() =>
      pool!.allocate({ timeoutMs: 2.5 * refillMs }).then(
        (a) => ({ ok: true as const, a }),
        (err: { code: string; details: { retry_after_ms: number; queue_position: number; waiting: number } }) => ({
          ok: false as const,
          err,
          at: performance.now() - started,
        }),
      ),
    );
    const results = await Promise.all(calls);
    expect(results[0].ok).toBe(true);
    // (The 2nd, expected after 2 refills, may be served or time out on a busy machine.)
    for (const [i, r] of [results[2], results[3]].entries()) {
      if (r.ok) throw new Error(`allocation ${i + 3} in line was served`);
      expect(r.err.code).toBe('POOL_EXHAUSTED');
      expect(r.at).toBeLessThan(refillMs); // at once, not after the timeout
      // The place it would have taken: the 3rd was refused, so the 4th would have been 3rd too.
      expect(r.err.details.queue_position).toBe(3);
      expect(r.err.details.retry_after_ms).toBeGreaterThan(2.5 * refillMs);
      expect(r.err.details.retry_after_ms).toBeLessThan(6 * refillMs);
    }
  });

  it('refuses at once when the line is full', async () => {
    const { b } = backend();
    pool = new Pool(config({ max: 1, target: 1 }), profile, b);
    pool.start();
    await pool.allocate();
    const waiting = Array.from({ length: MAX_WAITING_ALLOCATIONS }, () => pool!.allocate({ timeoutMs: 600_000 }).catch((err: Error) => err));
    expect(pool.status().waiting).toBe(MAX_WAITING_ALLOCATIONS);
    await expect(pool.allocate({ timeoutMs: 600_000 })).rejects.toMatchObject({
      code: 'POOL_EXHAUSTED',
      message: expect.stringContaining(`${MAX_WAITING_ALLOCATIONS} allocations waiting`),
      details: expect.objectContaining({ queue_position: MAX_WAITING_ALLOCATIONS + 1, retry_after_ms: expect.any(Number) }),
    });
    await pool.stop();
    expect((await Promise.all(waiting)).every((e) => (e as { code?: string }).code === 'POOL_EXHAUSTED')).toBe(true);
    pool = undefined;
  });

  it('a timed-out allocation learns its place in line and when to retry', async () => {
    const { b } = backend();
    pool = new Pool(config({ max: 1, target: 1 }), profile, b);
    pool.start();
    await pool.allocate();
    // A timeout well above the stand-in's refill time (5 ms, more on a loaded machine): else the pool refuses at once, expecting no VM in time.
    await expect(pool.allocate({ timeoutMs: 300 })).rejects.toMatchObject({
      code: 'POOL_EXHAUSTED',
      message: expect.stringMatching(/no ready VM after 300 ms .*waiting 0, max 1\); retry in about \d+ ms; release VMs or raise pools\.p\.max/),
      details: expect.objectContaining({ queue_position: 1, waiting: 0 }),
    });
  });

  it('starts the refill as soon as an allocation takes a VM, right after it returns', async () => {
    const { b } = backend();
    // One restore at a time: the demand-following target may ask for 2 (it depends on the measured refill time).
    pool = new Pool(config({ max: 3, target: 1, refillConcurrency: 1 }), profile, b);
    pool.start();
    await until(() => pool!.status().ready === 1 && pool!.status().booting === 0);
    await pool.allocate();
    // The caller has its VM before any refill work runs (the reply goes first) ...
    expect(pool.status().booting).toBe(0);
    await new Promise((r) => setImmediate(r));
    // ... and the refill has started by the next turn of the event loop.
    expect(pool.status().booting).toBe(1);
  });

  it('skips the ping of a running VM whose agent answered within skip_ping_within_ms, pings otherwise', async () => {
    let clock = 0;
    const { b, created } = backend();
    pool = new Pool(config({ max: 3, target: 2, skipPingWithinMs: 1000 }), profile, b, () => clock);
    pool.start();
    await until(() => pool!.status().ready === 2);
    const fresh = await pool.allocate();
    expect(fresh.checked).toBe(false);
    expect(fresh.checkMs).toBe(0);
    expect((fresh.member.vm as unknown as StandInVm).pings).toBe(0);
    clock += 1001;
    const stale = await pool.allocate();
    expect(stale.checked).toBe(true);
    expect((stale.member.vm as unknown as StandInVm).pings).toBe(1);
    // A health check renews the answer; 0 (the default of a hand-made PoolConfig) always pings.
    await until(() => pool!.status().ready >= 1);
    await pool.healthCheck();
    const renewed = await pool.allocate();
    expect(renewed.checked).toBe(false);
    await pool.stop();
    pool = new Pool(config({ target: 1 }), profile, b);
    pool.start();
    await until(() => pool!.status().ready === 1);
    expect((await pool.allocate()).checked).toBe(true);
    expect(created.at(-1)!.pings).toBe(1);
  });

  it('counts a VM as booting until it is offered (rewarm included), so refills never pass max', async () => {
    const warm = { ...profile, warmup: ['python3', '-c', 'import json'] } as Profile;
    const { b } = backend();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const origCreate = b.create.bind(b);
    b.create = async (p) => {
      const vm = await origCreate(p);
      const s = vm as unknown as StandInVm;
      const exec = s.exec.bind(s);
      s.exec = async (req) => (await gate, exec(req));
      return vm;
    };
    pool = new Pool(config({ target: 2, max: 2, refillConcurrency: 2 }), warm, b);
    pool.start();
    await until(() => pool!.status().booting === 2);
    await new Promise((r) => setTimeout(r, 30));
    expect(pool.status()).toMatchObject({ booting: 2, ready: 0 });
    release();
    await until(() => pool!.status().ready === 2);
    expect(pool.status().booting).toBe(0);
  });

  it('a release whose destroy fails (the store) still frees the slot and tells the caller', async () => {
    const { b } = backend({ destroyError: Object.assign(new Error('could not record ... disk full'), { code: 'STORE_ERROR' }) });
    pool = new Pool(config({ max: 1, target: 1 }), profile, b);
    pool.start();
    const a = await pool.allocate();
    await expect(pool.release(a.member.vm.id)).rejects.toThrow(/disk full/);
    expect(pool.status().allocated).toBe(0);
    expect((await pool.allocate()).member.vm.id).not.toBe(a.member.vm.id);
  });
});
