/**
 * Host checks for the Firecracker driver, for `tfc doctor`: the binary and
 * its version, KVM, the jailer and cgroup v2. Firecracker is optional (the
 * qemu driver works without it), so its problems are warnings unless the
 * config makes Firecracker the driver of the default or of some profile.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/index.js';
import { findExecutable, runCommand } from '../../process/index.js';
import { FIRECRACKER_INSTALL_HINT, parseFirecrackerVersion, versionAtLeast } from './driver.js';
import { parseMounts, readMounts } from './jailer.js';
import { gatherKvmFacts, judgeKvm, type KvmFacts } from './kvm.js';

/** One line of `tfc doctor` (same shape as src/cli/commands/doctor.ts). */
export interface DoctorCheck {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  /** How to fix it; present unless status is ok. */
  fix?: string;
}

/** Host facts, injectable for tests. */
export interface FirecrackerHostFacts {
  kvm?: KvmFacts;
  /** Text of /proc/mounts. */
  mounts?: string;
  /** Reads a cgroup file (`cgroup.controllers`); default readFileSync. */
  readCgroupFile?: (path: string) => string;
  isRoot?: boolean;
  env?: NodeJS.ProcessEnv;
}

const MIN_VERSION: [number, number] = [1, 8];

async function versionOf(binary: string, env: NodeJS.ProcessEnv | undefined): Promise<string | null> {
  const out = await runCommand(binary, ['--version'], { allowFailure: true, timeoutMs: 10_000, ...(env ? { env } : {}) }).catch(() => null);
  if (!out) return null;
  const text = out.stdout.toString() + out.stderr.toString();
  return parseFirecrackerVersion(text) ?? /(?:Jailer|jailer) v?(\d+\.\d+\.\d+\S*)/.exec(text)?.[1] ?? null;
}

/**
 * The Firecracker checks. Never throws: a check that cannot run reports
 * what it saw. `config` decides severity (is Firecracker required?) and
 * which jailer and cgroup settings to check.
 */
export async function firecrackerChecks(config: Config, facts: FirecrackerHostFacts = {}): Promise<DoctorCheck[]> {
  const fc = config.vmm.firecracker;
  const required = config.vmm.defaultDriver === 'firecracker' || Object.values(config.profiles).some((p) => p.driver === 'firecracker');
  const problem = required ? 'fail' : 'warn';
  const optional = required ? '' : ' (optional: the qemu driver works without it)';
  const checks: DoctorCheck[] = [];

  const binary = findExecutable(fc.binary);
  let fcVersion: string | null = null;
  if (!binary) {
    checks.push({ name: 'firecracker', status: problem, detail: `"${fc.binary}" not found${optional}`, fix: FIRECRACKER_INSTALL_HINT });
  } else {
    fcVersion = await versionOf(binary, facts.env);
    if (!fcVersion) {
      checks.push({ name: 'firecracker', status: problem, detail: `${binary} --version did not print a Firecracker version`, fix: FIRECRACKER_INSTALL_HINT });
    } else if (!versionAtLeast(fcVersion, ...MIN_VERSION)) {
      checks.push({
        name: 'firecracker',
        status: 'warn',
        detail: `${binary} v${fcVersion} is older than ${MIN_VERSION.join('.')}: it does not describe virtio devices through ACPI, so Debian's cloud kernel finds no vsock device`,
        fix: FIRECRACKER_INSTALL_HINT,
      });
    } else {
      checks.push({ name: 'firecracker', status: 'ok', detail: `${binary} v${fcVersion}` });
    }
  }

  const kvm = judgeKvm(facts.kvm ?? gatherKvmFacts());
  checks.push(
    kvm.usable
      ? { name: 'kvm (firecracker)', status: 'ok', detail: kvm.reason }
      : { name: 'kvm (firecracker)', status: problem, detail: `${kvm.reason}${optional}`, fix: kvm.fix! },
  );

  checks.push(await jailerCheck(config, fcVersion, facts, problem));
  checks.push(cgroupCheck(config, facts));
  return checks;
}

async function jailerCheck(config: Config, fcVersion: string | null, facts: FirecrackerHostFacts, problem: 'fail' | 'warn'): Promise<DoctorCheck> {
  const jailer = config.vmm.firecracker.jailer;
  const path = findExecutable(jailer.binary);
  if (!jailer.enabled) {
    return {
      name: 'firecracker jailer',
      status: 'warn',
      detail: `not enabled${path ? ` (${path} found)` : ''}: Firecracker runs unjailed, as root; set vmm.firecracker.jailer.enabled = true (the default) for chroot, per-VM uid and cgroup isolation`,
    };
  }
  if (!path) {
    return {
      name: 'firecracker jailer',
      status: problem,
      detail: `"${jailer.binary}" not found but vmm.firecracker.jailer.enabled = true (the default: Firecracker VMs will not start without it)`,
      fix: 'install the jailer from the same Firecracker release tarball and set vmm.firecracker.jailer.binary, or set vmm.firecracker.jailer.enabled = false',
    };
  }
  if (!(facts.isRoot ?? process.getuid?.() === 0)) {
    return {
      name: 'firecracker jailer',
      status: 'fail',
      detail: `${path}: the jailer must run as root (it creates the chroot, cgroups and device nodes, then drops to uid ${jailer.uid})`,
      fix: 'run tfc (the daemon) as root, or disable the jailer',
    };
  }
  const version = await versionOf(path, facts.env);
  if (version && fcVersion && version !== fcVersion) {
    return {
      name: 'firecracker jailer',
      status: 'warn',
      detail: `${path} v${version} but Firecracker is v${fcVersion}; the jailer is meant for the Firecracker of its own release`,
      fix: 'install firecracker and jailer from the same release tarball',
    };
  }
  const who = config.security.dropPrivileges
    ? `a uid of its own per VM from ${config.security.uidRangeStart} (${config.security.uidCount} uids)`
    : `uid ${jailer.uid}, gid ${jailer.gid} for every VM (security.drop_privileges = false)`;
  return { name: 'firecracker jailer', status: 'ok', detail: `${path}${version ? ` v${version}` : ''}; ${who}, chroot base ${jailer.chrootBaseDir}` };
}

function cgroupCheck(config: Config, facts: FirecrackerHostFacts): DoctorCheck {
  const jailer = config.vmm.firecracker.jailer;
  const needsV2 = jailer.enabled && jailer.cgroupVersion === 2;
  const needed = needsV2 ? [...new Set(jailer.cgroups.map((c) => c.slice(0, c.indexOf('.'))))] : [];
  const problem = needsV2 ? 'fail' : 'warn';
  const hybridFix = 'boot the host with cgroup v2 only (kernel argument systemd.unified_cgroup_hierarchy=1), or set vmm.firecracker.jailer.cgroup_version = 1';
  const mount = parseMounts(facts.mounts ?? readMounts()).find((m) => m.type === 'cgroup2');
  if (!mount) {
    return { name: 'cgroup v2', status: problem, detail: 'no cgroup2 file system mounted (the jailer cannot apply cgroup v2 limits)', fix: hybridFix };
  }
  const read = facts.readCgroupFile ?? ((p: string) => readFileSync(p, 'utf8'));
  let controllers: string[];
  try {
    controllers = read(join(mount.path, 'cgroup.controllers')).trim().split(/\s+/).filter(Boolean);
  } catch (err) {
    return {
      name: 'cgroup v2',
      status: problem,
      detail: `cgroup2 at ${mount.path} but ${join(mount.path, 'cgroup.controllers')} cannot be read: ${(err as Error).message}`,
      fix: hybridFix,
    };
  }
  const missing = needed.filter((c) => !controllers.includes(c));
  if (missing.length) {
    return {
      name: 'cgroup v2',
      status: 'fail',
      detail: `cgroup2 at ${mount.path} lacks controller(s) ${missing.join(', ')} needed by vmm.firecracker.jailer.cgroups (available: ${controllers.join(' ') || 'none'})${controllers.length === 0 ? '; a hybrid host binds every controller to cgroup v1' : ''}`,
      fix: hybridFix,
    };
  }
  if (controllers.length === 0) {
    return {
      name: 'cgroup v2',
      status: 'warn',
      detail: `cgroup2 at ${mount.path} has no controllers (a hybrid host binds them to cgroup v1): jailer cgroup v2 limits (memory.max, cpu.max) cannot be set`,
      fix: hybridFix,
    };
  }
  return { name: 'cgroup v2', status: 'ok', detail: `cgroup2 at ${mount.path}, controllers: ${controllers.join(' ')}` };
}
