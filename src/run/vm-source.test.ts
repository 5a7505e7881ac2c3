import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import type { Vm } from '../vm/index.js';
import { runtimeVmSource } from './vm-source.js';

function fakeSource(maxClones: number) {
  const destroyed: string[] = [];
  let n = 0;
  const { config } = loadConfig({ env: {}, cwd: '/nonexistent' });
  const source = runtimeVmSource({
    config,
    maxClones,
    snapshots: { clone: async () => ({ id: `vm-${++n}` }) as unknown as Vm },
    service: { destroy: async (vm: Vm) => void destroyed.push(vm.id) },
  });
  return { source, destroyed, profile: config.profiles.minimal };
}

describe('runtimeVmSource clones', () => {
  it('refuses a clone beyond maxClones with VM_BUSY, and frees the slot when one is given back', async () => {
    const { source, destroyed, profile } = fakeSource(2);
    const a = await source.clone(profile);
    await source.clone(profile);
    await expect(source.clone(profile)).rejects.toMatchObject({ code: 'VM_BUSY', details: { running: 2, max: 2 } });
    await a.giveBack();
    await a.giveBack(); // twice: counted once
    expect(destroyed).toEqual(['vm-1']);
    const c = await source.clone(profile);
    expect(c.vm.id).toBe('vm-3');
    await expect(source.clone(profile)).rejects.toMatchObject({ code: 'VM_BUSY' });
  });

  it('a clone that fails to start does not hold a slot', async () => {
    const { config } = loadConfig({ env: {}, cwd: '/nonexistent' });
    let fail = true;
    const source = runtimeVmSource({
      config,
      maxClones: 1,
      snapshots: {
        clone: async () => {
          if (fail) throw new Error('boom');
          return { id: 'vm-ok' } as unknown as Vm;
        },
      },
      service: { destroy: async () => {} },
    });
    await expect(source.clone(config.profiles.minimal)).rejects.toThrow('boom');
    fail = false;
    expect((await source.clone(config.profiles.minimal)).vm.id).toBe('vm-ok');
  });
});
