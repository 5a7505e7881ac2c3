import { afterEach, describe, expect, it } from 'vitest';
import type { PoolConfig, Profile } from '../config/index.js';
import type { Vm } from '../vm/vm.js';
import { Pool, type PoolBackend } from './pool.js';

// The pool's bookkeeping against stand-in VMs: real VMs are covered by
// test/pool-daemon.test.ts; here timing and failure can be controlled.
class StandInVm {
  static next = 0;
  readonly id = `vm-${StandInVm.next++}`;
  state: 'running' | 'paused' | 'failed' | 'stopped' = 'running';
  answers = true;
  readonly bootPhases: Array<{ name: string; ms: number }>;
  constructor(readyMs: number) {
    this.bootPhases = [{ name: 'restore', ms: readyMs }];
  }
  async pause() {
    this.state = 'paused';
  }
  async resume() {
    this.state = 'running';
  }
  get agent() {
    return {
      ping: async () => {
        if (this.state !== 'running' || !this.answers) throw new Error('no answer');
        return { uptimeMs: 1 };
      },
    };
  }
}

function backend(options: { delayMs?: number; fail?: () => boolean } = {}) {
  const created: StandInVm[] = [];
  const destroyed: string[] = [];
  const b: PoolBackend = {
    async create() {
      await new Promise((r) => setTimeout(r, options.delayMs ?? 5));
      if (options.fail?.()) throw new Error('restore failed');
      const vm = new StandInVm(10 + created.length);
      created.push(vm);
      return vm as unknown as Vm;
    },
    async destroy(vm) {
      (vm as unknown as StandInVm).state = 'stopped';
      destroyed.push(vm.id);
    },
  };
  return { b, created, destroyed };
}

const profile = { name: 'minimal' } as Profile;
function config(over: Partial<PoolConfig> = {}): PoolConfig {
  return {
    name: 'p', profile: 'minimal', min: 1, max: 3, target: 2, mode: 'fresh', prewarmState: 'running', refillConcurrency: 2,
    strategy: 'first-available', strategySeed: 1, maxUses: 100, maxAgeMs: 3_600_000, healthIntervalMs: 3_600_000, allocateTimeoutMs: 1000,
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
    for (let i = 0; i < 4; i++) {
      const a = await pool.allocate();
      seqs.push(a.member.seq);
      await pool.release(a.member.vm.id);
    }
    expect(seqs).toEqual([0, 1, 2, 0]);
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
});
