/**
 * `tfc doctor` lines about the privilege model (docs/security.md): who QEMU
 * runs as and under which sandbox, the uid range and its leases, and the
 * modes of the data dir, database and console logs. Reads only; never
 * changes a mode (opening the store does that).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import { ownerDeathMode } from '../process/index.js';
import { QEMU_SANDBOX, uidLeaseDir } from './privilege.js';
import { UidLeases } from './uid-leases.js';

export interface PrivilegeCheck {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

function modeOf(path: string): number | null {
  try {
    return statSync(path).mode & 0o777;
  } catch {
    return null;
  }
}

/** The privilege checks for `config`; `qemuHelp` is the text of `qemu-system-x86_64 -help` (null when QEMU is missing). Never throws. */
export function privilegeChecks(config: Config, qemuHelp: string | null): PrivilegeCheck[] {
  const checks: PrivilegeCheck[] = [];
  const { dropPrivileges, uidRangeStart, uidCount } = config.security;
  const root = process.getuid?.() === 0;
  if (!dropPrivileges) {
    checks.push({
      name: 'qemu privileges',
      status: 'warn',
      detail: `security.drop_privileges = false: QEMU runs as ${root ? 'root' : `uid ${process.getuid?.()}`} without -sandbox`,
      fix: 'set security.drop_privileges = true (the default)',
    });
  } else if (!root) {
    checks.push({
      name: 'qemu privileges',
      status: 'warn',
      detail: `tfc runs as uid ${process.getuid?.()}, not root: QEMU runs as that same user (it cannot switch to a uid of its own), without -sandbox`,
      fix: 'run the daemon as root to give every VM its own uid and a seccomp sandbox',
    });
  } else if (qemuHelp !== null && !(/-sandbox/.test(qemuHelp) && /-runas/.test(qemuHelp))) {
    checks.push({
      name: 'qemu privileges',
      status: 'fail',
      detail: 'this QEMU lacks -sandbox (seccomp) or -runas; VMs would fail to start',
      fix: "install Debian's qemu-system-x86 (built with seccomp), or set security.drop_privileges = false",
    });
  } else {
    const leases = new UidLeases(uidLeaseDir(config.dataDir), { start: uidRangeStart, count: uidCount }).leases().length;
    checks.push({
      name: 'qemu privileges',
      status: 'ok',
      detail: `opens its devices as root, then -sandbox ${QEMU_SANDBOX} and -runas a uid of its own per VM from ${uidRangeStart} (${uidCount} uids, ${leases} leased now)`,
    });
  }
  const death = ownerDeathMode();
  checks.push(
    death === 'guard'
      ? {
          name: 'vmm owner death',
          status: 'ok',
          detail: 'each VMM runs under a root guard (setpriv --pdeathsig + timeout) that kills it when its tfc process dies, even after it changed uid',
        }
      : {
          name: 'vmm owner death',
          status: 'warn',
          detail:
            death === 'pdeathsig'
              ? 'coreutils timeout is missing: a VMM that changed uid outlives a killed tfc until the next daemon start reconciles it'
              : 'util-linux setpriv is missing: a VMM outlives a killed tfc until the next daemon start reconciles it',
          fix: 'apt-get install util-linux coreutils',
        },
  );
  const dataDir = config.dataDir;
  const dirMode = modeOf(dataDir);
  const loose: string[] = [];
  if (dirMode !== null && dirMode !== 0o700) loose.push(`${dataDir} is ${dirMode.toString(8)} (want 700)`);
  const dbMode = modeOf(join(dataDir, 'tfc.db'));
  if (dbMode !== null && (dbMode & 0o077) !== 0) loose.push(`tfc.db is ${dbMode.toString(8)} (want 600)`);
  let logs: string[] = [];
  try {
    logs = readdirSync(join(dataDir, 'logs'));
  } catch {
    // no logs yet
  }
  const openLogs = logs.filter((name) => ((modeOf(join(dataDir, 'logs', name)) ?? 0) & 0o077) !== 0);
  if (openLogs.length) loose.push(`${openLogs.length} console log(s) readable by others`);
  checks.push(
    dirMode === null
      ? {
          name: 'file modes',
          status: 'ok',
          detail: `${dataDir} does not exist yet; it is created 0700 (database and logs 0600, golden snapshots root-owned 0444)`,
        }
      : loose.length
        ? {
            name: 'file modes',
            status: 'warn',
            detail: loose.join('; '),
            fix: 'start `tfc serve` (or any command that opens the store) once: it tightens the data dir',
          }
        : { name: 'file modes', status: 'ok', detail: `${dataDir} 0700, database and console logs 0600, golden snapshots root-owned 0444` },
  );
  return checks;
}
