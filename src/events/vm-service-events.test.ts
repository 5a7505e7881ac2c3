import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig, resolveProfile } from '../config/index.js';
import { openDatabase } from '../store/database.js';
import { dataLayout } from '../store/layout.js';
import { VmRepository } from '../store/vm-repository.js';
import { writeFakeImage } from '../testing/data-dir-fixtures.js';
import { FakeDriver } from '../testing/fake-driver.js';
import { canRunFakeVms, compileFakeGuest } from '../testing/fake-runtime.js';
import { VmService } from '../vm/vm-service.js';
import { EventBus, type BusEvent } from './bus.js';
import { vmEventObserver } from './vm-events.js';

if (!canRunFakeVms) console.warn('VM service event tests skipped: gcc is not installed');

// The VM service wired to the bus as the daemon wires it, on the fake driver
// (the real guest agent on a socket): a VM's life as the event stream tells it.
describe.skipIf(!canRunFakeVms)('VM service events (fake driver, real agent)', () => {
  let guest: Awaited<ReturnType<typeof compileFakeGuest>>;
  let dir = '';

  beforeAll(async () => {
    guest = await compileFakeGuest();
    dir = mkdtempSync(join(tmpdir(), 'tfc-vm-events-'));
  }, 120_000);

  afterAll(() => {
    guest?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('publishes every transition of a VM in order, its readiness, and the store holds the same states', async () => {
    const layout = dataLayout(dir);
    writeFakeImage(layout);
    const db = openDatabase(layout.database);
    const repo = new VmRepository(db);
    const bus = new EventBus();
    const seen: BusEvent[] = [];
    bus.subscribe((e) => seen.push(e));
    const service = new VmService({
      layout,
      repo,
      drivers: { qemu: new FakeDriver(guest.agentBinary) },
      stopTimeoutMs: 1000,
      observer: { ...vmEventObserver(bus) },
    });
    const profile = { ...resolveProfile(defaultConfig({ env: {} })), bootTimeoutMs: 10_000 };
    try {
      const vm = await service.create({ profile });
      await service.destroy(vm, 'test done');
      const states = seen.filter((e) => e.type === 'vm.state').map((e) => e.data);
      expect(states).toEqual([
        { vm_id: vm.id, from: 'creating', to: 'booting', reason: 'cold boot' },
        { vm_id: vm.id, from: 'booting', to: 'running', reason: expect.any(String) },
        { vm_id: vm.id, from: 'running', to: 'stopping', reason: 'test done' },
        { vm_id: vm.id, from: 'stopping', to: 'stopped', reason: 'test done' },
      ]);
      expect(seen.map((e) => e.type)).toEqual(['vm.state', 'vm.state', 'vm.ready', 'vm.state', 'vm.state']);
      expect(seen[2].data).toMatchObject({ vm_id: vm.id, kind: 'boot', driver: 'qemu', profile: profile.name });
      expect(repo.get(vm.id).state).toBe('stopped');
      // A failed boot: the failure, and the failed transition.
      seen.length = 0;
      await expect(service.create({ profile: { ...profile, bootTimeoutMs: 1 } })).rejects.toBeDefined();
      expect(seen.at(-1)).toMatchObject({ type: 'vm.failed', data: { driver: 'qemu' } });
      expect(seen.filter((e) => e.type === 'vm.state').map((e) => (e.data as { to: string }).to)).toContain('failed');
    } finally {
      await service.stopAll('test finished');
      db.close();
    }
  });
});
