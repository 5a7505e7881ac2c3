import { VmNotFoundError } from '../errors/index.js';
import { isSameProcessAlive, processStartTime } from '../process/index.js';
import type { Db } from './database.js';
import { guardStore } from './store-error.js';

const OWN_START = processStartTime(process.pid);

export interface VmRecord {
  id: string;
  driver: string;
  profile: string;
  imageDigest: string | null;
  state: string;
  accel: string | null;
  vcpus: number;
  memoryMib: number;
  pid: number | null;
  runDir: string | null;
  consoleLog: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  /** The tfc process that created and owns the VM, and when it started (pid reuse check). */
  ownerPid: number | null;
  ownerStart: number | null;
  createdAt: string;
  updatedAt: string;
}

export interface PhaseRecord {
  name: string;
  ms: number;
}

export interface TransitionRecord {
  from: string | null;
  to: string;
  reason: string | null;
  at: string;
}

interface VmRow {
  id: string;
  driver: string;
  profile: string;
  image_digest: string | null;
  state: string;
  accel: string | null;
  vcpus: number;
  memory_mib: number;
  pid: number | null;
  run_dir: string | null;
  console_log: string | null;
  error_code: string | null;
  error_message: string | null;
  owner_pid: number | null;
  owner_start: number | null;
  created_at: string;
  updated_at: string;
}

function fromRow(r: VmRow): VmRecord {
  return {
    id: r.id,
    driver: r.driver,
    profile: r.profile,
    imageDigest: r.image_digest,
    state: r.state,
    accel: r.accel,
    vcpus: r.vcpus,
    memoryMib: r.memory_mib,
    pid: r.pid,
    runDir: r.run_dir,
    consoleLog: r.console_log,
    errorCode: r.error_code,
    errorMessage: r.error_message,
    ownerPid: r.owner_pid,
    ownerStart: r.owner_start,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/**
 * VMs, their state transitions and their boot/restore/run phase timings.
 * Every write throws STORE_ERROR naming the operation, the database file
 * and what to do (disk full, read-only, locked) when SQLite refuses it.
 */
export class VmRepository {
  constructor(private readonly db: Db) {}

  /** The database file (for messages). */
  get path(): string {
    return this.db.name;
  }

  private write<T>(operation: string, fn: () => T): T {
    return guardStore(operation, this.db.name, fn);
  }

  /** Inserts a new VM with its first transition (null -> state). Throws on a duplicate id, STORE_ERROR. */
  insert(vm: Omit<VmRecord, 'createdAt' | 'updatedAt' | 'errorCode' | 'errorMessage' | 'ownerPid' | 'ownerStart'>): void {
    const now = new Date().toISOString();
    this.write(`record the creation of VM ${vm.id}`, () =>
      this.db.transaction(() => {
        this.db
          .prepare(
            `INSERT INTO vms (id, driver, profile, image_digest, state, accel, vcpus, memory_mib, pid, run_dir, console_log, owner_pid, owner_start, created_at, updated_at)
           VALUES (@id, @driver, @profile, @imageDigest, @state, @accel, @vcpus, @memoryMib, @pid, @runDir, @consoleLog, @ownerPid, @ownerStart, @now, @now)`,
          )
          .run({ ...vm, ownerPid: process.pid, ownerStart: OWN_START, now });
        this.db.prepare('INSERT INTO vm_transitions (vm_id, from_state, to_state, reason, at) VALUES (?, NULL, ?, ?, ?)').run(vm.id, vm.state, 'created', now);
      })(),
    );
  }

  /** Makes this process the owner of an existing VM record (a VM paused to disk, resumed by a later process). Throws STORE_ERROR. */
  claim(id: string): void {
    this.write(`record this process as the owner of VM ${id}`, () =>
      this.db.prepare('UPDATE vms SET owner_pid = ?, owner_start = ? WHERE id = ?').run(process.pid, OWN_START, id),
    );
  }

  /** Records a state change and its reason in one transaction. Throws STORE_ERROR. */
  transition(id: string, from: string, to: string, reason?: string): void {
    const now = new Date().toISOString();
    this.write(`record VM ${id} going from ${from} to ${to}`, () =>
      this.db.transaction(() => {
        this.db.prepare('UPDATE vms SET state = ?, updated_at = ? WHERE id = ?').run(to, now, id);
        this.db.prepare('INSERT INTO vm_transitions (vm_id, from_state, to_state, reason, at) VALUES (?, ?, ?, ?, ?)').run(id, from, to, reason ?? null, now);
      })(),
    );
  }

  /** Records why a VM failed (shown by `tfc vm get`). Throws STORE_ERROR. */
  setError(id: string, code: string, message: string): void {
    this.write(`record why VM ${id} failed`, () => this.db.prepare('UPDATE vms SET error_code = ?, error_message = ? WHERE id = ?').run(code, message, id));
  }

  /** Throws STORE_ERROR. */
  update(id: string, fields: Partial<Pick<VmRecord, 'pid' | 'accel'>>): void {
    this.write(`record the VMM process of VM ${id}`, () => {
      if (fields.pid !== undefined) this.db.prepare('UPDATE vms SET pid = ? WHERE id = ?').run(fields.pid, id);
      if (fields.accel !== undefined) this.db.prepare('UPDATE vms SET accel = ? WHERE id = ?').run(fields.accel, id);
    });
  }

  /** Replaces the phases of one kind ('boot', 'restore', 'run') for a VM. Throws STORE_ERROR. */
  recordPhases(id: string, kind: string, phases: readonly PhaseRecord[]): void {
    this.write(`record the ${kind} phases of VM ${id}`, () =>
      this.db.transaction(() => {
        this.db.prepare('DELETE FROM vm_phases WHERE vm_id = ? AND kind = ?').run(id, kind);
        const insert = this.db.prepare('INSERT INTO vm_phases (vm_id, kind, seq, name, ms) VALUES (?, ?, ?, ?, ?)');
        phases.forEach((p, i) => insert.run(id, kind, i, p.name, p.ms));
      })(),
    );
  }

  /** Throws VmNotFoundError when absent. */
  get(id: string): VmRecord {
    const row = this.db.prepare('SELECT * FROM vms WHERE id = ?').get(id) as VmRow | undefined;
    if (!row) throw new VmNotFoundError(`no VM with id "${id}"; list VMs with \`tfc vm ls\``);
    return fromRow(row);
  }

  /** VMs not stopped whose owner process is still running (this one included). */
  ownedByLiveProcesses(): VmRecord[] {
    return this.list({ states: ['creating', 'booting', 'running', 'paused', 'stopping', 'failed'] }).filter((v) =>
      isSameProcessAlive(v.ownerPid, v.ownerStart),
    );
  }

  list(filter: { states?: string[] } = {}): VmRecord[] {
    const rows = (
      filter.states && filter.states.length > 0
        ? this.db.prepare(`SELECT * FROM vms WHERE state IN (${filter.states.map(() => '?').join(',')}) ORDER BY created_at`).all(...filter.states)
        : this.db.prepare('SELECT * FROM vms ORDER BY created_at').all()
    ) as VmRow[];
    return rows.map(fromRow);
  }

  phases(id: string, kind: string): PhaseRecord[] {
    return this.db.prepare('SELECT name, ms FROM vm_phases WHERE vm_id = ? AND kind = ? ORDER BY seq').all(id, kind) as PhaseRecord[];
  }

  transitions(id: string): TransitionRecord[] {
    return this.db
      .prepare('SELECT from_state AS "from", to_state AS "to", reason, at FROM vm_transitions WHERE vm_id = ? ORDER BY seq')
      .all(id) as TransitionRecord[];
  }
}
