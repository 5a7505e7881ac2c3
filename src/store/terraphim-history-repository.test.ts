import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from './database.js';
import { cutUtf8, TerraphimHistoryRepository, type TerraphimHistoryBounds, type TerraphimHistoryRecord } from './terraphim-history-repository.js';

const entry = (vm: string, n: number, over: Partial<TerraphimHistoryRecord> = {}): TerraphimHistoryRecord => ({
  id: `e${n}`,
  vmId: vm,
  agentId: 'a',
  command: `echo ${n}`,
  language: 'bash',
  snapshotId: null,
  success: n % 2 === 0,
  exitCode: n % 2,
  stdout: `out ${n}\n`,
  stderr: '',
  executedAt: new Date(n * 1000).toISOString(),
  durationMs: n,
  ...over,
});

const bounds = (over: Partial<TerraphimHistoryBounds> = {}): TerraphimHistoryBounds => ({
  maxEntriesPerVm: 100,
  maxVms: 10,
  maxOutputBytes: 1024,
  maxCommandBytes: 1024,
  ...over,
});

describe('TerraphimHistoryRepository', () => {
  let dir = '';
  const open: Db[] = [];
  const db = (path = ':memory:') => {
    const d = openDatabase(path);
    open.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of open.splice(0)) if (d.open) d.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = '';
  });

  it('stores every field, queries oldest first with filters, limits to the most recent, counts all matches', () => {
    const repo = new TerraphimHistoryRepository(db(), bounds());
    for (let n = 0; n < 5; n++) repo.add(entry('vm-a', n, n === 3 ? { agentId: 'b' } : {}));
    repo.add(entry('vm-b', 9));
    expect(repo.query('vm-a').entries[0]).toEqual(entry('vm-a', 0));
    expect(repo.query('vm-a').entries.map((e) => e.id)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    expect(repo.query('vm-a', { failuresOnly: true })).toMatchObject({ total: 2, entries: [{ id: 'e1' }, { id: 'e3' }] });
    expect(repo.query('vm-a', { agentId: 'b' })).toMatchObject({ total: 1, entries: [{ id: 'e3', agentId: 'b' }] });
    expect(repo.query('vm-a', { failuresOnly: true, agentId: 'a' })).toMatchObject({ total: 1, entries: [{ id: 'e1' }] });
    expect(repo.query('vm-a', { limit: 2 })).toMatchObject({ total: 5, entries: [{ id: 'e3' }, { id: 'e4' }] });
    expect(repo.query('vm-a', { limit: 0 })).toEqual({ entries: [], total: 5 });
    expect(repo.query('vm-none')).toEqual({ entries: [], total: 0 });
    expect(repo.vmIds()).toEqual(['vm-b', 'vm-a']);
    expect(repo.persistent).toBe(false);
  });

  it('keeps the newest entries per VM and drops the least recently written VMs beyond the bound', () => {
    const repo = new TerraphimHistoryRepository(db(), bounds({ maxEntriesPerVm: 3, maxVms: 2 }));
    for (let n = 0; n < 5; n++) repo.add(entry('vm-1', n));
    expect(repo.query('vm-1').entries.map((e) => e.id)).toEqual(['e2', 'e3', 'e4']);
    repo.add(entry('vm-2', 0));
    // Writing vm-1 again makes vm-2 the least recently written.
    repo.add(entry('vm-1', 5));
    repo.add(entry('vm-3', 0));
    expect(repo.query('vm-2').total).toBe(0);
    expect(repo.query('vm-1').entries.map((e) => e.id)).toEqual(['e3', 'e4', 'e5']);
    expect(repo.vmIds()).toEqual(['vm-3', 'vm-1']);
  });

  it('cuts command and output to their bounds without splitting a character', () => {
    const repo = new TerraphimHistoryRepository(db(), bounds({ maxOutputBytes: 5, maxCommandBytes: 4 }));
    repo.add(entry('vm-1', 0, { stdout: 'ééé', stderr: 'a😀b', command: 'abcdef' }));
    const [e] = repo.query('vm-1').entries;
    expect(e).toMatchObject({ stdout: 'éé', stderr: 'a😀', command: 'abcd' });
    expect(cutUtf8('😀', 3)).toBe('');
    expect(cutUtf8('short', 100)).toBe('short');
  });

  it('attaches a snapshot to the latest entry once, and deletes a VM', () => {
    const repo = new TerraphimHistoryRepository(db(), bounds());
    repo.add(entry('vm-1', 0));
    repo.add(entry('vm-1', 1));
    expect(repo.attachSnapshot('vm-1', 'snap-000000000001')).toBe(true);
    expect(repo.attachSnapshot('vm-1', 'snap-000000000002')).toBe(false);
    expect(repo.attachSnapshot('vm-none', 'snap-000000000003')).toBe(false);
    expect(repo.query('vm-1').entries.map((e) => e.snapshotId)).toEqual([null, 'snap-000000000001']);
    expect(repo.deleteVm('vm-1')).toBe(2);
    expect(repo.deleteVm('vm-1')).toBe(0);
    expect(repo.vmIds()).toEqual([]);
  });

  it('survives reopening the file, and trims rows to lowered bounds when opened with them', () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-terraphim-history-'));
    const path = join(dir, 'tfc.db');
    const first = db(path);
    const repo = new TerraphimHistoryRepository(first, bounds());
    for (let n = 0; n < 4; n++) repo.add(entry('vm-1', n));
    repo.add(entry('vm-2', 0));
    repo.add(entry('vm-3', 0));
    expect(repo.persistent).toBe(true);
    first.close();

    const again = new TerraphimHistoryRepository(db(path), bounds({ maxEntriesPerVm: 2, maxVms: 2 }));
    expect(again.vmIds()).toEqual(['vm-3', 'vm-2']);
    const kept = new TerraphimHistoryRepository(db(path), bounds());
    expect(kept.query('vm-3').entries).toEqual([entry('vm-3', 0)]);

    const more = db(join(dir, 'b.db'));
    const big = new TerraphimHistoryRepository(more, bounds());
    for (let n = 0; n < 4; n++) big.add(entry('vm-1', n));
    more.close();
    const trimmed = new TerraphimHistoryRepository(db(join(dir, 'b.db')), bounds({ maxEntriesPerVm: 2 }));
    expect(trimmed.query('vm-1').entries.map((e) => e.id)).toEqual(['e2', 'e3']);
  });

  it('refuses bounds that are not positive integers', () => {
    expect(() => new TerraphimHistoryRepository(db(), bounds({ maxVms: 0 }))).toThrow(/maxVms must be a positive integer/);
    expect(() => new TerraphimHistoryRepository(db(), bounds({ maxOutputBytes: 1.5 }))).toThrow(/maxOutputBytes/);
  });

  it('reports SQLite failures as STORE_ERROR naming the operation', () => {
    const d = db();
    const repo = new TerraphimHistoryRepository(d, bounds());
    d.close();
    expect(() => repo.add(entry('vm-1', 0))).toThrow(
      expect.objectContaining({ code: 'STORE_ERROR', message: expect.stringContaining('record an execution of VM vm-1') }),
    );
  });
});
