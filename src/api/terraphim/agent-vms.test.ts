import { describe, expect, it } from 'vitest';
import { AgentVms } from './agent-vms.js';
import { resolveVmType } from './vm-types.js';

describe('AgentVms', () => {
  it('gives an agent one VM, shared by concurrent first calls, and a new one when it is gone', async () => {
    const alive = new Set<string>();
    let n = 0;
    const agents = new AgentVms((id) => alive.has(id), 10, 10);
    const allocate = async () => {
      await new Promise((r) => setTimeout(r, 5));
      const vmId = `vm-${++n}`;
      alive.add(vmId);
      return { vmId, pool: 'p' };
    };
    const [a, b] = await Promise.all([agents.acquire('x', allocate), agents.acquire('x', allocate)]);
    expect(a.vmId).toBe('vm-1');
    expect(b.vmId).toBe('vm-1');
    expect((await agents.acquire('x', allocate)).vmId).toBe('vm-1');
    alive.delete('vm-1');
    expect(agents.current('x')).toBeUndefined();
    expect((await agents.acquire('x', allocate)).vmId).toBe('vm-2');
  });

  it('refuses more agents than the bound with POOL_EXHAUSTED, after forgetting dead ones', async () => {
    const alive = new Set<string>();
    const agents = new AgentVms((id) => alive.has(id), 2, 10);
    const alloc = (id: string) => async () => {
      alive.add(id);
      return { vmId: id, pool: 'p' };
    };
    await agents.acquire('a', alloc('vm-a'));
    await agents.acquire('b', alloc('vm-b'));
    await expect(agents.acquire('c', alloc('vm-c'))).rejects.toMatchObject({ code: 'POOL_EXHAUSTED' });
    alive.delete('vm-a');
    expect((await agents.acquire('c', alloc('vm-c'))).vmId).toBe('vm-c');
  });
});

describe('resolveVmType', () => {
  const pools = [
    { name: 'sandbox', profile: 'minimal' },
    { name: 'py', profile: 'python' },
  ];
  it('takes aliases, pool names, then profiles of pools', () => {
    expect(resolveVmType('focal-optimized', pools, { 'focal-optimized': 'python' })).toBe('py');
    expect(resolveVmType('sandbox', pools)).toBe('sandbox');
    expect(resolveVmType('minimal', pools)).toBe('sandbox');
  });
  it('names the valid vm_types otherwise', () => {
    expect(() => resolveVmType('nope', pools)).toThrow(/valid vm_types: minimal, py, python, sandbox/);
    expect(() => resolveVmType('nope', [])).toThrow(/no pools/);
  });
});
