import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from './database.js';
import { LiveSnapshotRepository, type LiveSnapshotRecord } from './live-snapshot-repository.js';

function record(id: string, vmId: string, sizeBytes: number, name: string | null = null, createdAt = '2026-11-30T10:00:00.000Z'): LiveSnapshotRecord {
  return {
    id,
    vmId,
    name,
    createdAt,
    dir: `/data/live-snapshots/${id}`,
    files: { state: `/data/live-snapshots/${id}/state`, ...(vmId === 'vm-disk' ? { scratch: `/data/live-snapshots/${id}/scratch.ext4` } : {}) },
    sizeBytes,
    pauseMs: 12.5,
    profile: 'minimal',
    driver: 'qemu',
    meta: { image: 'minimal', imageDigest: 'abc', vcpus: 1, memoryMib: 256, kernelArgs: 'console=ttyS0', memoryBackend: true, network: false, diskMib: 0 },
  };
}

describe('LiveSnapshotRepository on a real SQLite file', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('stores, lists newest first, counts usage, finds by name, deletes, and survives reopening', () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-livesnap-'));
    const path = join(dir, 'tfc.db');
    let db = openDatabase(path);
    let repo = new LiveSnapshotRepository(db);
    repo.insert(record('snap-000000000001', 'vm-a', 1000));
    repo.insert(record('snap-000000000002', 'vm-a', 2000, 'good-state', '2026-11-30T11:00:00.000Z'));
    repo.insert(record('snap-000000000003', 'vm-disk', 4000));
    expect(repo.usage('vm-a')).toEqual({ vmCount: 2, totalBytes: 7000 });
    expect(repo.usage('vm-none')).toEqual({ vmCount: 0, totalBytes: 7000 });
    expect(repo.list({ vmId: 'vm-a' }).map((r) => r.id)).toEqual(['snap-000000000002', 'snap-000000000001']);
    expect(repo.getByName('good-state')?.id).toBe('snap-000000000002');
    expect(repo.get('snap-000000000003')).toEqual(record('snap-000000000003', 'vm-disk', 4000));
    db.close();

    db = openDatabase(path);
    repo = new LiveSnapshotRepository(db);
    expect(repo.list()).toHaveLength(3);
    expect(repo.delete('snap-000000000001')).toBe(true);
    expect(repo.delete('snap-000000000001')).toBe(false);
    expect(repo.get('snap-000000000001')).toBeNull();
    expect(repo.usage('vm-a')).toEqual({ vmCount: 1, totalBytes: 6000 });
    db.close();
  });

  it('updates the files and size of a row (a fork base), and reports a row that is gone', () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-livesnap-'));
    const db = openDatabase(join(dir, 'tfc.db'));
    const repo = new LiveSnapshotRepository(db);
    const r = record('snap-000000000001', 'vm-a', 1000);
    repo.insert(r);
    const files = { ...r.files, forkMemory: `${r.dir}/fork-memory`, forkState: `${r.dir}/fork-state` };
    expect(repo.updateFiles(r.id, files, 5000)).toBe(true);
    expect(repo.get(r.id)).toEqual({ ...r, files, sizeBytes: 5000 });
    expect(repo.usage('vm-a').totalBytes).toBe(5000);
    expect(repo.updateFiles('snap-00000000000f', files, 1)).toBe(false);
    db.close();
  });

  it('refuses a second snapshot with the same name', () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-livesnap-'));
    const db = openDatabase(join(dir, 'tfc.db'));
    const repo = new LiveSnapshotRepository(db);
    repo.insert(record('snap-000000000001', 'vm-a', 1, 'x'));
    expect(() => repo.insert(record('snap-000000000002', 'vm-b', 1, 'x'))).toThrow();
    repo.insert(record('snap-000000000003', 'vm-b', 1, null));
    repo.insert(record('snap-000000000004', 'vm-b', 1, null));
    expect(repo.list()).toHaveLength(3);
    db.close();
  });
});
