/**
 * Per-VM uids: each VMM process (QEMU after -runas, jailed Firecracker)
 * runs as a uid (and gid of the same number) of its own from the range
 * `security.uid_range_start` .. + `security.uid_count`. A lease is a file
 * `<dir>/<uid>` created with O_EXCL, so processes sharing a data dir (the
 * daemon, CLI runs, benches) never hand out the same uid. A lease whose
 * owner process is gone and whose uid no process runs as is reclaimed
 * (after a crash). This module never changes file owners or spawns
 * anything; it only decides numbers.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { VmmSpawnFailedError } from '../errors/index.js';

export interface UidRange {
  /** First uid of the range (config security.uid_range_start). */
  start: number;
  /** Number of uids (config security.uid_count). */
  count: number;
}

/** One leased uid; `release` is idempotent. */
export interface UidLease {
  uid: number;
  gid: number;
  release(): void;
}

interface LeaseRecord {
  pid: number;
  owner: string;
}

/** Uids of all running processes (real, effective, saved), from /proc/PID/status. */
export function uidsInUse(): Set<number> {
  const uids = new Set<number>();
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return uids;
  }
  for (const pid of pids) {
    try {
      const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) for (const u of m.slice(1, 4)) uids.add(Number(u));
    } catch {
      // the process exited while we looked
    }
  }
  return uids;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Leases uids of `range` through files in `dir` (created 0700 on first
 * use). Safe to use from several processes at once on the same `dir`.
 */
export class UidLeases {
  private cursor: number;
  private reconciled = false;

  constructor(
    readonly dir: string,
    readonly range: UidRange,
  ) {
    // Different data dirs start at different places, so two of them on one
    // host rarely pick the same uid even though they do not share leases.
    this.cursor = createHash('sha256').update(dir).digest().readUInt32BE(0) % range.count;
  }

  /**
   * A free uid for `owner` (a VM id, recorded in the lease). Reclaims stale
   * leases once per process. Throws VmmSpawnFailedError when every uid of
   * the range is leased.
   */
  acquire(owner: string): UidLease {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (!this.reconciled) {
      this.reconciled = true;
      this.reconcile();
    }
    const { start, count } = this.range;
    for (let i = 0; i < count; i++) {
      const uid = start + ((this.cursor + i) % count);
      const path = join(this.dir, String(uid));
      let fd: number;
      try {
        fd = openSync(path, 'wx', 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw new VmmSpawnFailedError(`cannot lease a VM uid in ${this.dir}: ${(err as Error).message}; check the data dir's permissions`, { cause: err });
      }
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, owner } satisfies LeaseRecord));
      } finally {
        closeSync(fd);
      }
      this.cursor = (this.cursor + i + 1) % count;
      let released = false;
      return {
        uid,
        gid: uid,
        release: () => {
          if (released) return;
          released = true;
          rmSync(path, { force: true });
        },
      };
    }
    throw new VmmSpawnFailedError(
      `all ${count} VM uids from ${start} are leased (${this.dir}); raise security.uid_count, or remove leases of VMs that no longer run with \`tfc serve\` restart reconciliation`,
    );
  }

  /** Uids leased now, with their owners. */
  leases(): Array<{ uid: number; pid: number; owner: string }> {
    let names: string[] = [];
    try {
      names = readdirSync(this.dir).filter((n) => /^\d+$/.test(n));
    } catch {
      return [];
    }
    const out: Array<{ uid: number; pid: number; owner: string }> = [];
    for (const name of names) {
      const record = readRecord(join(this.dir, name));
      out.push({ uid: Number(name), pid: record?.pid ?? 0, owner: record?.owner ?? '' });
    }
    return out;
  }

  /**
   * Frees leases whose owner process is gone and whose uid no running
   * process uses (a VMM that outlived its owner keeps its uid until it
   * exits). Returns the uids freed. Never throws.
   */
  reconcile(): number[] {
    const stale = this.leases().filter((l) => !pidAlive(l.pid));
    if (stale.length === 0) return [];
    const running = uidsInUse();
    const freed: number[] = [];
    for (const lease of stale) {
      if (running.has(lease.uid)) continue;
      const path = join(this.dir, String(lease.uid));
      // Rename first: of several processes reclaiming at once only one wins,
      // and a lease created in between (live owner) is put back.
      const tomb = `${path}.stale.${process.pid}`;
      try {
        renameSync(path, tomb);
        const record = readRecord(tomb);
        if (record && pidAlive(record.pid)) renameSync(tomb, path);
        else {
          rmSync(tomb, { force: true });
          freed.push(lease.uid);
        }
      } catch {
        // another process reclaimed it first
      }
    }
    return freed;
  }
}

function readRecord(path: string): LeaseRecord | null {
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as Partial<LeaseRecord>;
    return typeof r.pid === 'number' ? { pid: r.pid, owner: String(r.owner ?? '') } : null;
  } catch {
    return null;
  }
}
