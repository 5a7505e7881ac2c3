import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { writeFakeImage } from '../testing/data-dir-fixtures.js';
import { canRunFakeVms, compileFakeGuest, openFakeRuntime, type FakeRuntime } from '../testing/fake-runtime.js';
import { SnapshotManager } from './snapshot-manager.js';

// Golden snapshots: made once per profile/image/driver, cloned many times,
// sealed read-only, stale when the image is rebuilt, removable by key or
// profile. The VMM is the fake driver (real agent, no QEMU).

if (!canRunFakeVms) console.warn('SnapshotManager tests skipped: gcc is not installed');

describe.skipIf(!canRunFakeVms)('SnapshotManager', () => {
  let guest: Awaited<ReturnType<typeof compileFakeGuest>>;
  let rt: FakeRuntime;
  let snapshots: SnapshotManager;

  beforeAll(async () => {
    guest = await compileFakeGuest();
  }, 120_000);
  afterAll(() => guest?.remove());

  beforeEach(() => {
    rt = openFakeRuntime(guest.agentBinary);
    snapshots = new SnapshotManager(rt.layout, rt.service);
  });
  afterEach(async () => {
    await rt.close();
  });

  it('makes the golden snapshot once (template booted, paused, snapshotted, destroyed) and finds it afterwards', async () => {
    const [a, b] = await Promise.all([snapshots.ensure(rt.profile), snapshots.ensure(rt.profile)]);
    // Concurrent callers share one creation.
    expect(a.dir).toBe(b.dir);
    expect(rt.driver.instances).toHaveLength(1);
    expect(rt.driver.instances[0].exited).toBe(true);
    const m = a.manifest;
    expect(m).toMatchObject({
      profile: rt.profile.name,
      driver: 'qemu',
      driver_version: '0.0.0-fake',
      accel: 'tcg',
      vcpus: rt.profile.vcpus,
      memory_mib: rt.profile.memoryMib,
    });
    expect(m.create_phases.map((p) => p.name)).toEqual(['prepare', 'spawn_vmm', 'configure', 'start', 'kernel', 'agent_ready', 'pause', 'snapshot']);
    expect(m.files.state.size_bytes).toBeGreaterThan(0);
    // Clones map these files: nobody may write them.
    for (const f of [a.files.memoryPath, a.files.statePath]) expect(statSync(f).mode & 0o222).toBe(0);
    // No half-made directory is left.
    expect(readdirSync(join(rt.layout.root, 'snapshots')).filter((d) => d.startsWith('.'))).toEqual([]);

    const again = await snapshots.ensure(rt.profile);
    expect(again.dir).toBe(a.dir);
    expect(rt.driver.instances).toHaveLength(1);
    expect(snapshots.list().map((s) => s.manifest.key)).toEqual([m.key]);
  });

  it('clones run as restored VMs', async () => {
    const clone = await snapshots.clone(rt.profile);
    expect(clone.createdBy).toBe('restore');
    expect((await clone.exec({ argv: ['echo', 'from a clone'] })).stdout.toString()).toBe('from a clone\n');
  });

  it('force recreates; a rebuilt image makes the old snapshot stale and a new one is made', async () => {
    const first = await snapshots.ensure(rt.profile);
    const forced = await snapshots.ensure(rt.profile, { force: true });
    expect(forced.manifest.key).toBe(first.manifest.key);
    expect(rt.driver.instances).toHaveLength(2);

    writeFakeImage(rt.layout, { key: 'b'.repeat(64), createdAt: '2026-12-01T00:00:00.000Z' });
    const listed = snapshots.list();
    expect(listed).toHaveLength(1);
    expect(listed[0].image).toBeNull();
    const fresh = await snapshots.ensure(rt.profile);
    expect(fresh.manifest.key).not.toBe(first.manifest.key);
    expect(snapshots.list().map((s) => s.image === null)).toEqual([false, true]);
  });

  it('removes by key prefix or profile, refusing short prefixes and unknown names', async () => {
    const snap = await snapshots.ensure(rt.profile);
    expect(() => snapshots.remove('abc')).toThrow('at least 4 characters');
    expect(() => snapshots.remove('zzzz')).toThrow('no snapshot matches "zzzz"; list them with `tfc snapshot ls`');
    expect(snapshots.remove(snap.manifest.key.slice(0, 6)).map((m) => m.key)).toEqual([snap.manifest.key]);
    expect(existsSync(snap.dir)).toBe(false);
    await snapshots.ensure(rt.profile);
    expect(snapshots.remove(rt.profile.name)).toHaveLength(1);
    expect(snapshots.list()).toEqual([]);
  });

  it('a template that fails to boot leaves no snapshot directory', async () => {
    rt.driver.faults = { spawnFails: true };
    await expect(snapshots.ensure(rt.profile)).rejects.toMatchObject({ code: 'VMM_SPAWN_FAILED' });
    expect(readdirSync(join(rt.layout.root, 'snapshots'))).toEqual([]);
    expect(snapshots.list()).toEqual([]);
  });
});
