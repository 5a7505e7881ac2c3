/**
 * Starting VMM binaries the way the host should run them, for the drivers
 * in vmm/: the `tfc-vmm-exec` launcher (a lower CPU priority and no
 * transparent huge pages for the VMM process, applied before it runs; see
 * docs/density.md and docs/performance.md), and a cache of each binary's
 * `--version` output (version-cache.ts). Knows nothing of VMs or drivers;
 * spawns nothing long-lived itself (the drivers do, through process/).
 */
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import { findExecutable } from '../process/index.js';
import { ensureVmmExec, type VmmExecAvailability } from './build.js';

export { ensureVmmExec, isTrustedExecutable, vmmExecDigest, vmmExecPath, type VmmExecAvailability } from './build.js';
export { VersionCache, binaryIdentity, type BinaryIdentity } from './version-cache.js';

/** How a VMM process should run. */
export interface VmmExecSettings {
  /** `vmm.nice`: nice value 0..19 of the VMM process (0 = this process's own); default 10. */
  nice: number;
  /** `vmm.qemu.thp = "never"`: no transparent huge pages in the process (QEMU only); default true for QEMU. */
  disableThp: boolean;
}

/** Data-dir cache of the launcher binary and the version file: `<data_dir>/cache/vmm`. */
export function vmmCacheDir(dataDir: string): string {
  return join(dataDir, 'cache', 'vmm');
}

/** The `--version` cache file in a cache dir (vmmCacheDir). */
export function versionCacheFile(cacheDir: string): string {
  return join(cacheDir, 'versions.json');
}

/** The QEMU and Firecracker settings a Config asks for (Firecracker has no THP key). Pure. */
export function vmmExecSettingsFrom(config: Config): { qemu: VmmExecSettings; firecracker: VmmExecSettings } {
  return {
    qemu: { nice: config.vmm.nice, disableThp: config.vmm.qemu.thp === 'never' },
    firecracker: { nice: config.vmm.nice, disableThp: false },
  };
}

/** True when the settings change anything (otherwise VMMs start as they are, without the launcher). */
export function needsLauncher(settings: VmmExecSettings): boolean {
  return settings.nice > 0 || settings.disableThp;
}

/**
 * The launcher's argv for `program args...` (program must be an absolute
 * path: the launcher does no PATH search). Pure.
 */
export function launcherArgv(launcher: string, settings: VmmExecSettings, program: string, args: readonly string[]): [string, string[]] {
  if (!program.startsWith('/')) throw new Error(`tfc-vmm-exec needs an absolute program path, got ${program}`);
  return [launcher, [...(settings.nice > 0 ? ['--nice', String(settings.nice)] : []), ...(settings.disableThp ? ['--no-thp'] : []), '--', program, ...args]];
}

/** What a driver spawns, and what it must still do once the process runs. */
export interface VmmCommand {
  file: string;
  args: string[];
  /** Without the launcher: renice the process to this value after spawn (reniceProcess). Null when nothing is left to do. */
  reniceTo: number | null;
}

let warned = false;

/**
 * One driver's way of starting its VMM processes: through the launcher
 * (built on first use in `cacheDir`) when the settings change anything,
 * else directly. Without a launcher (no gcc, no cache dir) the process
 * starts directly and the driver renices it after spawn (THP stays on);
 * that fallback is reported once per process as a Node warning
 * (`TFC_VMM_LAUNCHER`) and by `tfc doctor` (launcherCheck).
 */
export class VmmExec {
  private availability: Promise<VmmExecAvailability> | undefined;

  constructor(
    readonly settings: VmmExecSettings,
    private readonly cacheDir: string | null,
  ) {}

  /** Builds (or finds) the launcher; memoised; never throws. Call early to overlap the build with other work. */
  prepare(): Promise<VmmExecAvailability> {
    if (!needsLauncher(this.settings)) return Promise.resolve({ kind: 'direct', reason: 'not needed: vmm.nice = 0 and THP inherited' });
    this.availability ??= (
      this.cacheDir ? ensureVmmExec(this.cacheDir) : Promise.resolve<VmmExecAvailability>({ kind: 'direct', reason: 'no data dir to build tfc-vmm-exec in' })
    ).then((a) => {
      if (a.kind === 'direct' && !warned) {
        warned = true;
        process.emitWarning(`VMMs start without tfc-vmm-exec: ${a.reason}; they are reniced after start and keep transparent huge pages (run \`tfc doctor\`)`, {
          code: 'TFC_VMM_LAUNCHER',
        });
      }
      return a;
    });
    return this.availability;
  }

  /**
   * The command that starts `file args...` (file a name in PATH or a path)
   * with these settings. `file` is resolved here because the launcher
   * execs without a PATH search; a name that does not resolve is passed on
   * as is, so spawnSupervised reports it missing.
   */
  async command(file: string, args: readonly string[]): Promise<VmmCommand> {
    if (!needsLauncher(this.settings)) return { file, args: [...args], reniceTo: null };
    const availability = await this.prepare();
    const program = findExecutable(file);
    if (availability.kind === 'direct' || program === null) return { file, args: [...args], reniceTo: this.settings.nice > 0 ? this.settings.nice : null };
    const [launcher, argv] = launcherArgv(availability.path, this.settings, program, args);
    return { file: launcher, args: argv, reniceTo: null };
  }
}

/**
 * Sets the nice value of every thread of `pid` to `nice` (never lowering
 * one already higher): the fallback when the launcher is missing.
 * setpriority() acts on one thread, and threads made before it keep their
 * value, so each task is set; threads made later inherit from their
 * (reniced) creator. Returns how many threads were changed; never throws
 * (a process that exited meanwhile changes nothing).
 */
export function reniceProcess(pid: number, nice: number): number {
  let changed = 0;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) {
    try {
      if (getPriority(Number(tid)) < nice) {
        setPriority(Number(tid), nice);
        changed++;
      }
    } catch {
      // the thread exited, or it changed uid and we are not root: leave it
    }
  }
  return changed;
}

/** A `tfc doctor` line for the launcher (same shape as the doctor's checks). Retries a failed build. */
export async function launcherCheck(config: Config): Promise<{ name: string; status: 'ok' | 'warn'; detail: string; fix?: string }> {
  const settings = vmmExecSettingsFrom(config);
  if (!needsLauncher(settings.qemu) && !needsLauncher(settings.firecracker)) {
    return { name: 'vmm launcher', status: 'ok', detail: 'not used (vmm.nice = 0, vmm.qemu.thp = "inherit")' };
  }
  const a = await ensureVmmExec(vmmCacheDir(config.dataDir), { force: true });
  return a.kind === 'launcher'
    ? { name: 'vmm launcher', status: 'ok', detail: `${a.path} (nice ${config.vmm.nice}, QEMU THP ${config.vmm.qemu.thp})` }
    : {
        name: 'vmm launcher',
        status: 'warn',
        detail: `${a.reason}; VMMs are reniced after start and keep transparent huge pages`,
        fix: 'apt-get install gcc libc6-dev (scripts/setup.sh installs both)',
      };
}
