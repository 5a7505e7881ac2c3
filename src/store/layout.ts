import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ensurePrivateDir, tighten } from '../security/index.js';

/**
 * Where everything lives under the data dir (config data_dir, env
 * TFC_DATA_DIR). One place, so cleanup and reconciliation know every path.
 */
export interface DataLayout {
  root: string;
  /** SQLite database (WAL mode). */
  database: string;
  /** Built images: images/<name>-<key>/ plus refs/<name>. */
  images: string;
  imageRefs: string;
  /** Downloaded Debian packages, kept for rebuilds. */
  debCache: string;
  /** Per-VM runtime directories (sockets); removed when the VM is destroyed. */
  runVms: string;
  /** Per-VM console logs; the newest are kept for debugging. */
  logs: string;
  /** Scratch space for builds; cleaned per build. */
  tmp: string;
}

export function dataLayout(root: string): DataLayout {
  return {
    root,
    database: join(root, DATABASE_FILE),
    images: join(root, 'images'),
    imageRefs: join(root, 'images', 'refs'),
    debCache: join(root, 'cache', 'debs'),
    runVms: join(root, 'run', 'vms'),
    logs: join(root, 'logs'),
    tmp: join(root, 'tmp'),
  };
}

/** File name of the database inside a data dir (dataLayout().database). */
export const DATABASE_FILE = 'tfc.db';

/**
 * Tightens a data dir to the modes docs/security.md promises: the dir
 * itself, logs/ and snapshots/ 0700, console logs 0600 (older releases made
 * them world-readable). Creates the root when missing. Never touches a
 * directory with the sticky bit (such as /tmp), so a data dir mistakenly set
 * to one stays usable by others. Idempotent; throws only when the root
 * cannot be created.
 */
export function secureDataDir(layout: DataLayout): void {
  try {
    if (statSync(layout.root).mode & 0o1000) return;
  } catch {
    // missing: created below
  }
  ensurePrivateDir(layout.root);
  for (const dir of [layout.logs, join(layout.root, 'snapshots'), join(layout.root, 'run')]) tighten(dir, 0o700);
  let logs: string[] = [];
  try {
    logs = readdirSync(layout.logs);
  } catch {
    return;
  }
  for (const name of logs) tighten(join(layout.logs, name), 0o600);
}

/** The layout whose database is `databasePath`, when it is a data dir's (named tfc.db); else null. */
export function layoutOfDatabase(databasePath: string): DataLayout | null {
  return basename(databasePath) === DATABASE_FILE ? dataLayout(dirname(databasePath)) : null;
}
