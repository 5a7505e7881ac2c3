import { dirname } from 'node:path';
import { StoreError, TfcError } from '../errors/index.js';

/**
 * Turns an SQLite failure into a STORE_ERROR that says which write failed,
 * in which database file, and what the operator can do about it. Only
 * translates errors; never retries (a retry loop on a full disk would hide
 * the problem) and never touches the database itself.
 */

/** What to do about an SQLite error code (better-sqlite3's `err.code`, e.g. SQLITE_FULL, SQLITE_READONLY_DBMOVED). */
export function storeHint(sqliteCode: string | undefined, dbPath: string): string {
  const dir = dbPath === ':memory:' ? 'data_dir' : `data_dir (${dirname(dbPath)})`;
  const code = sqliteCode ?? '';
  if (code.startsWith('SQLITE_FULL')) return `disk full: free space in ${dir}`;
  if (code.startsWith('SQLITE_READONLY')) {
    return `the database is read-only: make ${dir} and its tfc.db* files writable by this user, and check that the filesystem is not mounted read-only`;
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return 'another process held the database lock for more than 5 s: look for a stuck tfc process using the same data_dir';
  }
  if (code.startsWith('SQLITE_IOERR')) return `I/O error writing ${dir}: check the disk (dmesg) and free space`;
  if (code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_NOTADB')) {
    return `the database file is damaged: stop tfc, move ${dbPath} aside (tfc creates a new one; VM history is lost)`;
  }
  if (code.startsWith('SQLITE_CANTOPEN')) return `the database file cannot be opened: check that ${dir} exists and is writable`;
  return `check ${dir}: free space, permissions, and that no other process locks tfc.db`;
}

/**
 * A StoreError for `operation` (e.g. "record VM vm-1 as running") that
 * failed with `err`. A TfcError thrown inside the operation (not an SQLite
 * failure) is returned unchanged.
 */
export function toStoreError(err: unknown, operation: string, dbPath: string): TfcError {
  if (err instanceof TfcError) return err;
  const sqliteCode = (err as { code?: unknown })?.code;
  const code = typeof sqliteCode === 'string' ? sqliteCode : undefined;
  const message = err instanceof Error ? err.message : String(err);
  return new StoreError(`could not ${operation} in the state database ${dbPath}: ${message}${code ? ` (${code})` : ''}; ${storeHint(code, dbPath)}`, {
    cause: err,
    details: { operation, database: dbPath, ...(code ? { sqlite_code: code } : {}) },
  });
}

/** Runs one store operation, translating its failure with `toStoreError`. */
export function guardStore<T>(operation: string, dbPath: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toStoreError(err, operation, dbPath);
  }
}
