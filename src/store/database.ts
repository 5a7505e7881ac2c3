import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { StoreError } from '../errors/index.js';
import { MIGRATIONS } from './migrations.js';
import { ensurePrivateFile, tighten } from '../security/index.js';
import { layoutOfDatabase, secureDataDir } from './layout.js';

export type Db = Database.Database;

/**
 * Opens (creating if needed) the SQLite database in WAL mode and applies
 * pending migrations. Throws StoreError naming the file and the fix when it
 * cannot be opened (permissions, a newer schema than this build knows).
 */
export function openDatabase(path: string): Db {
  let db: Db;
  try {
    if (path !== ':memory:') {
      const layout = layoutOfDatabase(path);
      if (layout) secureDataDir(layout);
      else mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      // Created 0600 before SQLite opens it: its -wal and -shm files copy the mode.
      ensurePrivateFile(path);
    }
    db = new Database(path);
  } catch (err) {
    throw new StoreError(`cannot open state database ${path}: ${(err as Error).message}; check data_dir (env TFC_DATA_DIR) and its permissions`, {
      cause: err,
    });
  }
  db.pragma('journal_mode = WAL');
  if (path !== ':memory:') for (const suffix of ['-wal', '-shm']) tighten(path + suffix, 0o600);
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db, path);
  return db;
}

function migrate(db: Db, path: string): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  const current = (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
  const latest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
  if (current > latest) {
    throw new StoreError(
      `state database ${path} has schema version ${current}, newer than this tfc build supports (${latest}); upgrade tfc or use another data_dir`,
    );
  }
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, new Date().toISOString());
    })();
  }
}
