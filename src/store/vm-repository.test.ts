import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from './database.js';
import { VmRepository } from './vm-repository.js';

describe('VmRepository on a real SQLite file', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('records VMs, transitions and phases, and survives reopening', () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-store-'));
    const path = join(dir, 'tfc.db');
    let db = openDatabase(path);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const repo = new VmRepository(db);
    repo.insert({
      id: 'vm-1',
      driver: 'qemu',
      profile: 'minimal',
      imageDigest: 'abc',
      state: 'creating',
      accel: null,
      vcpus: 1,
      memoryMib: 256,
      pid: null,
      runDir: '/r',
      consoleLog: '/l',
    });
    repo.transition('vm-1', 'creating', 'booting');
    repo.setError('vm-1', 'VM_BOOT_TIMEOUT', 'slow');
    repo.transition('vm-1', 'booting', 'failed', 'boot timed out');
    repo.recordPhases('vm-1', 'boot', [
      { name: 'spawn_vmm', ms: 12.5 },
      { name: 'kernel', ms: 3000 },
    ]);
    db.close();

    db = openDatabase(path); // migrations are idempotent
    const again = new VmRepository(db);
    expect(again.get('vm-1')).toMatchObject({ state: 'failed', errorCode: 'VM_BOOT_TIMEOUT' });
    expect(again.transitions('vm-1').map((t) => `${t.from}->${t.to}`)).toEqual(['null->creating', 'creating->booting', 'booting->failed']);
    expect(again.phases('vm-1', 'boot')).toEqual([
      { name: 'spawn_vmm', ms: 12.5 },
      { name: 'kernel', ms: 3000 },
    ]);
    expect(again.list({ states: ['failed'] }).map((v) => v.id)).toEqual(['vm-1']);
    expect(() => again.get('nope')).toThrow(/no VM with id "nope"/);
    db.close();
  });

  it('refuses a database from a newer schema', () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-store-'));
    const path = join(dir, 'tfc.db');
    const db = openDatabase(path);
    db.prepare("INSERT INTO schema_migrations VALUES (999, 'future', 'now')").run();
    db.close();
    expect(() => openDatabase(path)).toThrow(/schema version 999, newer than this tfc build/);
  });
});
