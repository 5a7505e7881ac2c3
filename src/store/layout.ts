import { join } from 'node:path';

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
    database: join(root, 'tfc.db'),
    images: join(root, 'images'),
    imageRefs: join(root, 'images', 'refs'),
    debCache: join(root, 'cache', 'debs'),
    runVms: join(root, 'run', 'vms'),
    logs: join(root, 'logs'),
    tmp: join(root, 'tmp'),
  };
}
