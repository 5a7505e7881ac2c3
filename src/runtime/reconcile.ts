/**
 * Start-up reconciliation of the store with this machine (daemon start):
 * VMs of dead owners are killed and marked stopped, leftover run, temp and
 * half-made snapshot directories removed. Used by composeRuntime.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isSameProcessAlive } from '../process/index.js';
import { RUN_DIR_OWNER_FILE } from '../vm/boot-steps.js';
import type { DataLayout, VmRepository } from '../store/index.js';
import type { DriverName, VmmDriver } from '../vmm/index.js';

const STALE_BUILD_MS = 60 * 60 * 1000;

export interface ReconcileReport {
  /** VMs the store thought alive that belonged to a previous daemon. */
  vmsMarkedStopped: string[];
  /** VMM processes of those VMs that were still running and were killed. */
  processesKilled: number[];
  /** Runtime directories (sockets) without a live VM, removed. */
  runDirsRemoved: string[];
  /** Half-written snapshot or image build directories, removed. */
  tempDirsRemoved: string[];
  /** What drivers removed for those VMs outside their run dirs (Firecracker jails). */
  driverLeftovers: string[];
}

function alive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the run dir's owner file (written by the `prepare` step) names another live tfc process. */
function ownedByOtherLiveProcess(runDir: string): boolean {
  try {
    const owner = JSON.parse(readFileSync(join(runDir, RUN_DIR_OWNER_FILE), 'utf8')) as { pid?: unknown; start?: unknown };
    if (typeof owner.pid !== 'number' || owner.pid === process.pid) return false;
    return isSameProcessAlive(owner.pid, typeof owner.start === 'number' ? owner.start : null);
  } catch {
    return false; // no owner file (an older tfc, or a dir half made): removed as before
  }
}

/** True when `pid` is a live process whose command line names the VM (so a reused pid is never killed). */
function isVmProcess(pid: number, vmId: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(vmId);
  } catch {
    return false;
  }
}

/**
 * Makes the store agree with the machine at daemon start, before any VM is
 * created: every VM recorded as not stopped whose owner process is gone
 * belonged to a previous process (VMMs die with their owner, but a kill -9
 * of the owner may leave one briefly); kill what survives, mark it stopped,
 * and remove its run dir and temporary build/snapshot directories. VMs of
 * live tfc processes are left alone. Never throws for a single item.
 */
export function reconcileAtStart(layout: DataLayout, repo: VmRepository, drivers: Partial<Record<DriverName, VmmDriver>> = {}): ReconcileReport {
  const report: ReconcileReport = { vmsMarkedStopped: [], processesKilled: [], runDirsRemoved: [], tempDirsRemoved: [], driverLeftovers: [] };
  const ownedElsewhere = new Set<string>();
  for (const vm of repo.list({ states: ['creating', 'booting', 'running', 'paused', 'stopping', 'failed'] })) {
    // Another live tfc process (a `tfc vm run`, a second daemon) still owns it.
    if (vm.ownerPid !== process.pid && isSameProcessAlive(vm.ownerPid, vm.ownerStart)) {
      ownedElsewhere.add(vm.id);
      continue;
    }
    if (vm.pid && isVmProcess(vm.pid, vm.id)) {
      try {
        process.kill(vm.pid, 'SIGKILL');
        report.processesKilled.push(vm.pid);
      } catch {
        // already gone
      }
    }
    report.driverLeftovers.push(...(drivers[vm.driver as DriverName]?.removeLeftovers?.(vm.id) ?? []));
    repo.transition(vm.id, vm.state, 'stopped', 'reconciled at daemon start: its owner exited');
    report.vmsMarkedStopped.push(vm.id);
  }
  if (existsSync(layout.runVms)) {
    for (const dir of readdirSync(layout.runVms)) {
      // A VM of another live tfc process, or its standby VMM (no store row yet: its owner file says whose it is).
      if (ownedElsewhere.has(dir) || ownedByOtherLiveProcess(join(layout.runVms, dir))) continue;
      rmSync(join(layout.runVms, dir), { recursive: true, force: true });
      report.runDirsRemoved.push(dir);
    }
  }
  // Build scratch dirs of another running build are fresh; old ones are leftovers.
  if (existsSync(layout.tmp)) {
    for (const entry of readdirSync(layout.tmp)) {
      const path = join(layout.tmp, entry);
      if (Date.now() - statSync(path).mtimeMs < STALE_BUILD_MS) continue;
      rmSync(path, { recursive: true, force: true });
      report.tempDirsRemoved.push(path);
    }
  }
  // Half-made snapshots are named .NAME.PID.tmp by the process making them.
  const snapshots = join(layout.root, 'snapshots');
  if (existsSync(snapshots)) {
    for (const entry of readdirSync(snapshots)) {
      const pid = /^\..*\.(\d+)\.tmp$/.exec(entry)?.[1];
      if (pid === undefined || (Number(pid) !== process.pid && alive(Number(pid)))) continue;
      rmSync(join(snapshots, entry), { recursive: true, force: true });
      report.tempDirsRemoved.push(join(snapshots, entry));
    }
  }
  return report;
}
