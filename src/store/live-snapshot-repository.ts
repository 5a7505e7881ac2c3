import type { Db } from './database.js';
import { guardStore } from './store-error.js';

/** What a live snapshot needs to be restored (rollback, fork): the VM's shape when it was taken. */
export interface LiveSnapshotMeta {
  image: string;
  imageDigest: string;
  vcpus: number;
  memoryMib: number;
  kernelArgs: string;
  /** The VM kept RAM in a memory backend (`-M memory-backend=mem`), as golden-snapshot clones do. */
  memoryBackend: boolean;
  /** The VM had a network device (profile network.enabled). */
  network: boolean;
  /** Size of the VM's scratch disk (0 = none). */
  diskMib: number;
  /** The VM's network subnet at snapshot time (a VM resumed from disk takes it again when free: same address). */
  subnet?: string;
  /** The VM was paused to disk with it: it stays (even unnamed) until the VM is resumed from it or it is deleted. */
  persisted?: boolean;
}

/** The files of one live snapshot: absolute paths under data_dir/live-snapshots/ID. */
export interface LiveSnapshotFileSet {
  /** QEMU: migration stream with device state and all guest RAM. Firecracker: the snapshot (device) state file. */
  state: string;
  /** Firecracker: the guest memory file of the Full snapshot (clones map it privately). Absent for QEMU. */
  memory?: string;
  /** Copy of the VM's scratch disk at snapshot time, when it had one. */
  scratch?: string;
  /**
   * QEMU fork base, made by the first fork of a golden clone's snapshot
   * (src/snapshot/live/fork-base.ts): guest RAM as a file that forks map
   * copy-on-write, and the device state without RAM that goes with it.
   * Both or neither; counted in size_bytes once made.
   */
  forkMemory?: string;
  forkState?: string;
}

export interface LiveSnapshotRecord {
  id: string;
  vmId: string;
  name: string | null;
  createdAt: string;
  dir: string;
  files: LiveSnapshotFileSet;
  sizeBytes: number;
  pauseMs: number;
  profile: string;
  driver: string;
  meta: LiveSnapshotMeta;
}

interface Row {
  id: string;
  vm_id: string;
  name: string | null;
  created_at: string;
  dir: string;
  files: string;
  size_bytes: number;
  pause_ms: number;
  profile: string;
  driver: string;
  meta: string;
}

function fromRow(r: Row): LiveSnapshotRecord {
  return {
    id: r.id,
    vmId: r.vm_id,
    name: r.name,
    createdAt: r.created_at,
    dir: r.dir,
    files: JSON.parse(r.files) as LiveSnapshotFileSet,
    sizeBytes: r.size_bytes,
    pauseMs: r.pause_ms,
    profile: r.profile,
    driver: r.driver,
    meta: JSON.parse(r.meta) as LiveSnapshotMeta,
  };
}

/** Rows of `live_snapshots` (migration 5): snapshots of running VMs, their files and sizes. Throws STORE_ERROR. */
export class LiveSnapshotRepository {
  constructor(private readonly db: Db) {}

  private guard<T>(operation: string, fn: () => T): T {
    return guardStore(operation, this.db.name, fn);
  }

  insert(record: LiveSnapshotRecord): void {
    this.guard('record a snapshot', () =>
      this.db
        .prepare(
          `INSERT INTO live_snapshots (id, vm_id, name, created_at, dir, files, size_bytes, pause_ms, profile, driver, meta)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          record.id,
          record.vmId,
          record.name,
          record.createdAt,
          record.dir,
          JSON.stringify(record.files),
          record.sizeBytes,
          record.pauseMs,
          record.profile,
          record.driver,
          JSON.stringify(record.meta),
        ),
    );
  }

  /** Rewrites the files and size of snapshot `id` (a fork base was added). Returns false when the row is gone. */
  updateFiles(id: string, files: LiveSnapshotFileSet, sizeBytes: number): boolean {
    return this.guard(
      'update a snapshot',
      () => this.db.prepare('UPDATE live_snapshots SET files = ?, size_bytes = ? WHERE id = ?').run(JSON.stringify(files), sizeBytes, id).changes === 1,
    );
  }

  get(id: string): LiveSnapshotRecord | null {
    const row = this.guard('read a snapshot', () => this.db.prepare('SELECT * FROM live_snapshots WHERE id = ?').get(id) as Row | undefined);
    return row ? fromRow(row) : null;
  }

  getByName(name: string): LiveSnapshotRecord | null {
    const row = this.guard('read a snapshot', () => this.db.prepare('SELECT * FROM live_snapshots WHERE name = ?').get(name) as Row | undefined);
    return row ? fromRow(row) : null;
  }

  /** Newest first; of one VM when `vmId` is given. Bounded by the quotas (per VM and total). */
  list(options: { vmId?: string } = {}): LiveSnapshotRecord[] {
    const rows = this.guard('list snapshots', () =>
      options.vmId
        ? (this.db.prepare('SELECT * FROM live_snapshots WHERE vm_id = ? ORDER BY created_at DESC, id').all(options.vmId) as Row[])
        : (this.db.prepare('SELECT * FROM live_snapshots ORDER BY created_at DESC, id').all() as Row[]),
    );
    return rows.map(fromRow);
  }

  /** Snapshots of `vmId` and total bytes of all snapshots (what the quotas count). */
  usage(vmId: string): { vmCount: number; totalBytes: number } {
    return this.guard('count snapshots', () => {
      const vm = this.db.prepare('SELECT COUNT(*) AS n FROM live_snapshots WHERE vm_id = ?').get(vmId) as { n: number };
      const total = this.db.prepare('SELECT COALESCE(SUM(size_bytes), 0) AS b FROM live_snapshots').get() as { b: number };
      return { vmCount: vm.n, totalBytes: total.b };
    });
  }

  /** True when a row was deleted. */
  delete(id: string): boolean {
    return this.guard('delete a snapshot', () => this.db.prepare('DELETE FROM live_snapshots WHERE id = ?').run(id).changes > 0);
  }
}
