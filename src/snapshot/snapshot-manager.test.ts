import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
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

  it('runs the warmup in the template before pausing, keys the snapshot by it, and fails with the command, code and stderr', async () => {
    const marker = join(rt.dir, 'warmed');
    const warm = { ...rt.profile, warmup: ['sh', '-c', `echo warm > ${marker}`] };
    const snap = await snapshots.ensure(warm);
    expect(snap.manifest.create_phases.map((p) => p.name)).toEqual([
      'prepare',
      'spawn_vmm',
      'configure',
      'start',
      'kernel',
      'agent_ready',
      'warmup',
      'pause',
      'snapshot',
    ]);
    expect(snap.manifest.warmup).toEqual(warm.warmup);
    // (The fake's guest is this host: the warmup's file is here.)
    expect(readFileSync(marker, 'utf8')).toBe('warm\n');
    expect(snap.manifest.key).not.toBe((await snapshots.ensure(rt.profile)).manifest.key);

    const bad = { ...rt.profile, warmup: ['sh', '-c', 'echo preparing; echo "no such module: numpy" >&2; exit 3'] };
    const err = await snapshots.ensure(bad).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: 'SNAPSHOT_WARMUP_FAILED',
      message: expect.stringMatching(
        /warmup \["sh","-c",.*\] \(profiles\.minimal\.warmup\) of the golden snapshot exited with code 3; stderr ends: no such module: numpy$/,
      ),
      details: { exit_code: 3, stderr_tail: 'no such module: numpy' },
    });
    expect(await snapshots.current(bad)).toBeNull();
    expect(readdirSync(join(rt.layout.root, 'snapshots')).filter((d) => d.startsWith('.'))).toEqual([]);
    // Every template, the failed one included, was stopped.
    expect(rt.driver.instances.every((i) => i.exited)).toBe(true);
  });

  it('keeps the template scratch disk sealed in the snapshot, and gives each clone its own copy, removed with it', async () => {
    const disk = { ...rt.profile, diskMib: 16 };
    const snap = await snapshots.ensure(disk);
    expect(snap.manifest.create_phases.map((p) => p.name)).toEqual([
      'prepare',
      'disk',
      'spawn_vmm',
      'configure',
      'start',
      'kernel',
      'agent_ready',
      'sync',
      'pause',
      'snapshot',
    ]);
    expect(snap.manifest.kernel_args).toMatch(/ tfc\.scratch=\/dev\/vda( |$)/);
    expect(snap.manifest.files.scratch).toMatchObject({ size_bytes: 16 * 1024 * 1024 });
    expect(statSync(snap.files.scratchDiskPath!).mode & 0o222).toBe(0);
    const clone = await snapshots.clone(disk);
    expect(clone.bootPhases.map((p) => p.name)).toEqual(['prepare', 'disk', 'spawn_vmm', 'load_snapshot', 'resume', 'agent_ready', 'refresh_guest']);
    const copy = clone.scratchDiskPath!;
    expect(copy.startsWith(join(rt.layout.runVms, clone.id))).toBe(true);
    expect(readFileSync(copy).equals(readFileSync(snap.files.scratchDiskPath!))).toBe(true);
    expect(statSync(copy).mode & 0o777).toBe(0o600);
    await rt.service.destroy(clone);
    expect(existsSync(copy)).toBe(false);
    // A snapshot directory that lost its disk is not used.
    expect(snapshots.list().map((s) => s.manifest.key)).toContain(snap.manifest.key);
    rmSync(snap.files.scratchDiskPath!);
    expect(snapshots.list().map((s) => s.manifest.key)).not.toContain(snap.manifest.key);
  });

  it('a template that fails to boot leaves no snapshot directory', async () => {
    rt.driver.faults = { spawnFails: true };
    await expect(snapshots.ensure(rt.profile)).rejects.toMatchObject({ code: 'VMM_SPAWN_FAILED' });
    expect(readdirSync(join(rt.layout.root, 'snapshots'))).toEqual([]);
    expect(snapshots.list()).toEqual([]);
  });
});
