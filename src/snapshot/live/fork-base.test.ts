import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BuiltImage } from '../../guest/image-store.js';
import type { CleanupStack } from '../../steps/index.js';
import { LiveSnapshotRepository, openDatabase, type Db, type LiveSnapshotRecord } from '../../store/index.js';
import type { DriverInfo, SnapshotFiles, VmLaunchSpec, VmmDriver, VmmInstance } from '../../vmm/driver.js';
import { FORK_BASE_RUN_DIR, forkBaseFiles, ForkBases, materializeForkBase, type ForkBaseOutput } from './fork-base.js';

const image = { kernelPath: '/img/vmlinux', initrdPath: '/img/initrd', manifest: { name: 'minimal', digest: 'd' } } as unknown as BuiltImage;

/** A VMM that does what QEMU does to the files (RAM file made at spawn, device state written by createSnapshot), and nothing else. */
class FilesOnlyDriver implements VmmDriver {
  readonly name = 'qemu' as const;
  readonly specs: VmLaunchSpec[] = [];
  readonly events: string[] = [];
  failAt: 'spawn' | 'createSnapshot' | null = null;

  async probe(): Promise<DriverInfo> {
    return { name: 'qemu', binary: 'none', version: '0', accel: 'tcg', accelReason: 'test' };
  }

  baseKernelArgs(): string {
    return '';
  }

  async spawn(spec: VmLaunchSpec, cleanup: CleanupStack): Promise<VmmInstance> {
    this.specs.push(spec);
    if (this.failAt === 'spawn') throw new Error('spawn failed (test)');
    writeFileSync(spec.snapshotMemoryPath!, Buffer.alloc(8192, 1));
    cleanup.push('stop', () => this.events.push('stopped'));
    const fail = this.failAt;
    const events = this.events;
    const instance: Partial<VmmInstance> = {
      pid: 1,
      accel: 'tcg',
      loadSnapshot: async () => void events.push('load'),
      pause: async () => void events.push('pause'),
      createSnapshot: async (files: SnapshotFiles) => {
        if (fail === 'createSnapshot') throw new Error('createSnapshot failed (test)');
        writeFileSync(files.statePath, 'device state');
        events.push('snapshot');
      },
      shutdown: async () => {
        events.push('shutdown');
        return { code: 0, signal: null };
      },
    };
    return instance as VmmInstance;
  }
}

describe('fork bases', () => {
  let root: string;
  let db: Db;
  let repo: LiveSnapshotRepository;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'tfc-fork-base-'));
    db = openDatabase(':memory:');
    repo = new LiveSnapshotRepository(db);
  });
  afterEach(() => {
    db.close();
    rmSync(root, { recursive: true, force: true });
  });

  function snapshot(overrides: { memoryBackend?: boolean; memory?: boolean; scratch?: boolean } = {}): LiveSnapshotRecord {
    const id = `snap-${String(readdirSync(root).length).padStart(12, '0')}`;
    const dir = join(root, id);
    mkdirSync(dir);
    writeFileSync(join(dir, 'state'), Buffer.alloc(64 * 1024, 7));
    if (overrides.scratch) writeFileSync(join(dir, 'scratch.ext4'), 'disk');
    const record: LiveSnapshotRecord = {
      id,
      vmId: 'vm-1',
      name: null,
      createdAt: new Date().toISOString(),
      dir,
      files: {
        state: join(dir, 'state'),
        ...(overrides.memory ? { memory: join(dir, 'memory') } : {}),
        ...(overrides.scratch ? { scratch: join(dir, 'scratch.ext4') } : {}),
      },
      sizeBytes: 64 * 1024,
      pauseMs: 1,
      profile: 'minimal',
      driver: 'qemu',
      meta: {
        image: 'minimal',
        imageDigest: 'd',
        vcpus: 1,
        memoryMib: 256,
        kernelArgs: 'console=ttyS0',
        memoryBackend: overrides.memoryBackend ?? true,
        network: false,
        diskMib: overrides.scratch ? 16 : 0,
      },
    };
    repo.insert(record);
    return record;
  }

  function bases(driver: VmmDriver, options: { totalBytes?: number; materialize?: typeof materializeForkBase } = {}) {
    return new ForkBases({ repo, driver: () => driver, quota: { perVm: 8, totalBytes: options.totalBytes ?? 1024 ** 3 }, materialize: options.materialize });
  }

  it('makes one fork base for concurrent forks, records it in the row (size included) and seals its files', async () => {
    const driver = new FilesOnlyDriver();
    const record = snapshot();
    const forkBases = bases(driver);
    const [a, b, c] = await Promise.all([forkBases.ensure(record, image), forkBases.ensure(record, image), forkBases.ensure(record, image)]);
    expect(driver.specs).toHaveLength(1);
    expect(a).toEqual(b);
    expect(a).toEqual(c);
    const stored = repo.get(record.id)!;
    expect(stored.files).toEqual({ state: record.files.state, forkMemory: join(record.dir, 'fork-memory'), forkState: join(record.dir, 'fork-state') });
    expect(stored.sizeBytes).toBeGreaterThan(record.sizeBytes);
    expect(stored.createdAt).toBe(record.createdAt);
    for (const f of [stored.files.forkMemory!, stored.files.forkState!]) expect(statSync(f).mode & 0o777).toBe(0o444);
    expect(readdirSync(record.dir).sort()).toEqual(['fork-memory', 'fork-state', 'state']);
    expect(forkBaseFiles(stored)).toEqual({ memoryPath: stored.files.forkMemory, statePath: stored.files.forkState });
    // Later forks, from this service or a new one (a daemon restart), use it as it is.
    expect(await forkBases.ensure(stored, image)).toBe(stored);
    expect(await bases(driver).ensure(repo.get(record.id)!, image)).toEqual(stored);
    expect(driver.specs).toHaveLength(1);
  });

  it('spawns the VMM to receive the full stream into a shared RAM file, with a copy of the scratch disk, and removes its run dir', async () => {
    const driver = new FilesOnlyDriver();
    const record = snapshot({ scratch: true });
    const out: ForkBaseOutput = { memoryPath: join(record.dir, 'm.tmp'), statePath: join(record.dir, 's.tmp') };
    await materializeForkBase(driver, { record, image }, out);
    const spec = driver.specs[0]!;
    expect(spec.snapshotMemoryPath).toBe(out.memoryPath);
    expect(spec.restoreFrom).toEqual({ memoryPath: record.files.state, statePath: record.files.state, memoryInState: { memoryBackend: true } });
    expect(spec.runDir).toBe(join(record.dir, FORK_BASE_RUN_DIR));
    expect(spec.drives).toEqual([{ id: 'scratch', path: join(spec.runDir, 'scratch.ext4'), readOnly: false }]);
    expect(spec.network).toBeUndefined();
    expect(driver.events).toEqual(['load', 'pause', 'snapshot', 'shutdown', 'stopped']);
    expect(existsSync(spec.runDir)).toBe(false);
    expect(existsSync(out.memoryPath) && existsSync(out.statePath)).toBe(true);
  });

  it('leaves nothing of a failed attempt, keeps the row as it was, and tries again on the next fork', async () => {
    const driver = new FilesOnlyDriver();
    driver.failAt = 'createSnapshot';
    const record = snapshot();
    const forkBases = bases(driver);
    await expect(forkBases.ensure(record, image)).rejects.toThrow(/createSnapshot failed/);
    expect(driver.events).toContain('stopped');
    expect(readdirSync(record.dir)).toEqual(['state']);
    expect(repo.get(record.id)).toEqual(record);
    driver.failAt = 'spawn';
    await expect(forkBases.ensure(record, image)).rejects.toThrow(/spawn failed/);
    expect(readdirSync(record.dir)).toEqual(['state']);
    driver.failAt = null;
    expect((await forkBases.ensure(record, image))?.files.forkMemory).toBeDefined();
    expect(driver.specs).toHaveLength(3);
  });

  it('is not made for cold-booted VMs or Firecracker snapshots, nor over the size quota (forks then restore the full stream)', async () => {
    const driver = new FilesOnlyDriver();
    expect(await bases(driver).ensure(snapshot({ memoryBackend: false }), image)).toBeNull();
    expect(await bases(driver).ensure({ ...snapshot(), driver: 'firecracker' }, image)).toBeNull();
    expect(await bases(driver).ensure(snapshot({ memory: true }), image)).toBeNull();
    const full = snapshot();
    expect(await bases(driver, { totalBytes: 4 * 64 * 1024 + 4096 }).ensure(full, image)).toBeNull();
    expect(driver.specs).toHaveLength(0);
    expect(repo.get(full.id)).toEqual(full);
  });

  it('answers SNAPSHOT_NOT_FOUND, leaving no files, when the snapshot is deleted while its fork base is made', async () => {
    const record = snapshot();
    const forkBases = bases(new FilesOnlyDriver(), {
      materialize: async (driver, source, out) => {
        await materializeForkBase(driver, source, out);
        repo.delete(record.id); // what LiveSnapshotService.delete does meanwhile (then it removes the directory)
      },
    });
    await expect(forkBases.ensure(record, image)).rejects.toMatchObject({ code: 'SNAPSHOT_NOT_FOUND' });
    expect(existsSync(record.dir)).toBe(false);
    expect(repo.get(record.id)).toBeNull();
  });
});
