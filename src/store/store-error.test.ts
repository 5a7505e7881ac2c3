import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TfcError } from '../errors/index.js';
import { openDatabase } from './database.js';
import { LeaseRepository } from './lease-repository.js';
import { storeHint, toStoreError } from './store-error.js';
import { VmRepository } from './vm-repository.js';

const vm = (id: string) => ({
  id,
  driver: 'qemu',
  profile: 'minimal',
  imageDigest: null,
  state: 'creating',
  accel: null,
  vcpus: 1,
  memoryMib: 256,
  pid: null,
  runDir: null,
  consoleLog: null,
});

describe('store failures become STORE_ERROR naming the operation, the file and the fix', () => {
  let dir = '';
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = '';
  });

  it('a read-only database (query_only) refuses writes with a clear message and keeps reads working', () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-store-'));
    const path = join(dir, 'tfc.db');
    const db = openDatabase(path);
    const repo = new VmRepository(db);
    repo.insert(vm('vm-1'));
    db.pragma('query_only = ON');
    let err: unknown;
    try {
      repo.transition('vm-1', 'creating', 'booting', 'cold boot');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TfcError);
    const e = err as TfcError;
    expect(e.code).toBe('STORE_ERROR');
    expect(e.message).toContain('record VM vm-1 going from creating to booting');
    expect(e.message).toContain(path);
    expect(e.message).toMatch(/read-only: make data_dir .* writable/);
    expect(e.details).toMatchObject({ database: path, sqlite_code: expect.stringMatching(/^SQLITE_READONLY/) });
    expect(() => repo.insert(vm('vm-2'))).toThrow(/could not record the creation of VM vm-2/);
    expect(() => repo.setError('vm-1', 'X', 'y')).toThrow(/STORE|read-only/);
    expect(() => new LeaseRepository(db).release('vm-1')).toThrow(/release the network lease of VM vm-1/);
    expect(repo.get('vm-1').state).toBe('creating');
    db.close();
  });

  it('hints match the SQLite error', () => {
    expect(storeHint('SQLITE_FULL', '/d/tfc.db')).toBe('disk full: free space in data_dir (/d)');
    expect(storeHint('SQLITE_BUSY', '/d/tfc.db')).toMatch(/lock/);
    expect(storeHint('SQLITE_IOERR_WRITE', '/d/tfc.db')).toMatch(/I\/O error/);
    expect(storeHint('SQLITE_CORRUPT', '/d/tfc.db')).toMatch(/move \/d\/tfc.db aside/);
    expect(storeHint(undefined, '/d/tfc.db')).toMatch(/free space, permissions/);
    // A typed error raised inside the operation is not disguised as a store failure.
    const typed = new TfcError('INVALID_STATE', 'no');
    expect(toStoreError(typed, 'x', '/d/tfc.db')).toBe(typed);
  });
});
