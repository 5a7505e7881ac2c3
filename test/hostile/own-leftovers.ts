import { existsSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * Leak check for tests that share the test data dir with other users of the
 * machine (benches, other suites): only the VMs this test process created
 * (owner_pid) are checked, so someone else's running VM is not blamed on us.
 * Every one must have no live VMM process and no run dir (sockets) left.
 */
export function assertOwnVmsGone(databasePath: string, extraVmPids: readonly number[] = []): void {
  const db = new Database(databasePath, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT id, pid, run_dir AS runDir, state FROM vms WHERE owner_pid = ?').all(process.pid) as Array<{
      id: string;
      pid: number | null;
      runDir: string | null;
      state: string;
    }>;
    const problems: string[] = [];
    for (const r of rows) {
      if (r.pid && vmmAlive(r.pid, r.id)) problems.push(`${r.id}: VMM pid ${r.pid} still running (state ${r.state})`);
      if (r.runDir && existsSync(r.runDir)) problems.push(`${r.id}: run dir ${r.runDir} left`);
      if (!['stopped', 'failed'].includes(r.state)) problems.push(`${r.id}: recorded ${r.state}, not stopped or failed`);
    }
    for (const pid of extraVmPids) if (alive(pid)) problems.push(`VMM pid ${pid} still running`);
    if (problems.length > 0) throw new Error(`left behind: ${problems.join('; ')}`);
  } finally {
    db.close();
  }
}

/** True while process `pid` exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A live process with that pid whose command line names the VM (a reused pid is someone else). */
function vmmAlive(pid: number, vmId: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(vmId);
  } catch {
    return false;
  }
}
