import { existsSync, readdirSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LiveSnapshotRepository } from '../../store/index.js';
import { canRunFakeVms, compileFakeGuest, openFakeRuntime, type FakeRuntime } from '../../testing/fake-runtime.js';
import { LiveSnapshotService, liveSnapshotsDir } from './live-snapshots.js';

// The service's checks and failure paths with a fake VMM (no live snapshot
// support): what callers are told and that nothing is left behind. The real
// thing (QEMU) is test/live-snapshots.test.ts.
describe.skipIf(!canRunFakeVms)('LiveSnapshotService with a VMM that cannot snapshot running VMs', () => {
  let guest: Awaited<ReturnType<typeof compileFakeGuest>>;
  let rt: FakeRuntime;
  let live: LiveSnapshotService;

  beforeAll(async () => {
    guest = await compileFakeGuest();
  }, 120_000);
  afterAll(() => guest?.remove());

  beforeEach(() => {
    rt = openFakeRuntime(guest.agentBinary);
    live = new LiveSnapshotService({ layout: rt.layout, repo: new LiveSnapshotRepository(rt.db), service: rt.service, profiles: () => rt.profile });
  });
  afterEach(() => rt.close());

  it('answers SNAPSHOT_UNSUPPORTED, records nothing and leaves no files; the VM keeps running', async () => {
    const vm = await rt.service.create({ profile: rt.profile });
    await expect(live.snapshot(vm)).rejects.toMatchObject({ code: 'SNAPSHOT_UNSUPPORTED', status: 501 });
    expect(live.list()).toEqual([]);
    const dir = liveSnapshotsDir(rt.layout);
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
    expect(vm.state).toBe('running');
    expect((await vm.exec({ argv: ['sh', '-c', 'echo ok'] })).stdout.toString()).toBe('ok\n');
  });

  it('refuses bad names, unknown ids, a bad fork count and rollback to another VM before touching any VM', async () => {
    const vm = await rt.service.create({ profile: rt.profile });
    await expect(live.snapshot(vm, { name: '../escape' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(live.snapshot(vm, { name: 'x'.repeat(65) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(() => live.get('snap-000000000000')).toThrow(expect.objectContaining({ code: 'SNAPSHOT_NOT_FOUND' }));
    expect(() => live.get('../../etc')).toThrow(expect.objectContaining({ code: 'SNAPSHOT_NOT_FOUND' }));
    await expect(live.fork('snap-000000000000', 0)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(live.fork('snap-000000000000', 17)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(live.rollback(vm, 'snap-000000000000')).rejects.toMatchObject({ code: 'SNAPSHOT_NOT_FOUND' });
    await expect(live.revive(vm.id)).rejects.toMatchObject({ code: 'VM_NOT_FOUND' });
    expect(vm.state).toBe('running');
  });
});
