/**
 * Firecracker's jailer (docs/jailer.md in Firecracker): argv construction,
 * the chroot it runs Firecracker in (`<chroot_base>/<exec_name>/<id>/root`),
 * the files placed there, and cleanup. The jailer itself creates the chroot
 * directories, copies the Firecracker binary in, joins cgroups and the
 * network namespace, pivots into the chroot, drops to uid/gid and execs
 * Firecracker (same pid: we do not pass --daemonize or --new-pid-ns, so the
 * pid we supervise is Firecracker's and its serial console stays on our
 * pipe). Everything Firecracker opens by path (kernel, initrd, drives,
 * snapshots, log and metrics sinks, sockets) must be inside the chroot and
 * is named by its chroot path, e.g. `/vmlinux`. Nothing here removes what
 * the jailer did not make for this VM.
 */
import {
  chownSync,
  constants,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  rmSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import type { JailerConfig } from '../../config/index.js';
import { basename, join, resolve } from 'node:path';
import { InvalidArgumentError, VmmSpawnFailedError } from '../../errors/index.js';
import { runCommand } from '../../process/index.js';
import { netnsPath } from './launch-options.js';

/**
 * The jailer settings: config `[vmm.firecracker.jailer]` (field docs in
 * src/config/types.ts) without `enabled`. `binary` is resolved to a path by
 * the driver's probe; a spec's own netns wins over `netns`.
 */
export type JailerOptions = Omit<JailerConfig, 'enabled'>;

export interface JailOwner {
  uid: number;
  gid: number;
}

/** Where one VM's jail lives on the host. */
export interface JailLayout {
  /** Last path component of the exec file (the jailer's `exec_file_name`). */
  execName: string;
  /** `<chroot_base>/<exec_name>/<id>`: removed as a whole on cleanup. */
  jailDir: string;
  /** `<jailDir>/root`: "/" for the jailed Firecracker. */
  root: string;
}

const ID_CHARS = /[^A-Za-z0-9-]/g;
const MAX_ID_LENGTH = 64;

/**
 * The `--id` Firecracker and the jailer accept for `vmId`: alphanumerics and
 * hyphens, at most 64 characters (other characters become `-`). Pure.
 */
export function firecrackerId(vmId: string): string {
  const id = vmId.replace(ID_CHARS, '-').slice(0, MAX_ID_LENGTH);
  return id === '' ? 'vm' : id;
}

/** The jail of VM `id` (already a firecrackerId) for Firecracker binary `execFile`. Pure. */
export function jailLayout(options: Pick<JailerOptions, 'chrootBaseDir'>, execFile: string, id: string): JailLayout {
  const execName = basename(execFile);
  const jailDir = join(resolve(options.chrootBaseDir), execName, id);
  return { execName, jailDir, root: join(jailDir, 'root') };
}

export interface JailerInvocation {
  /** firecrackerId of the VM. */
  id: string;
  /** Absolute path of the Firecracker binary. */
  execFile: string;
  /** Network namespace for this VM (spec option), else the config's. */
  netns?: string;
  /** Arguments for Firecracker, after `--` (the jailer adds `--id` itself). */
  firecrackerArgs: readonly string[];
}

/** The jailer's argv, in its documented order (docs/jailer.md "Jailer Usage"). Pure. */
export function buildJailerArgv(options: JailerOptions, inv: JailerInvocation): string[] {
  const netns = inv.netns || options.netns;
  return [
    '--id',
    inv.id,
    '--exec-file',
    inv.execFile,
    '--uid',
    String(options.uid),
    '--gid',
    String(options.gid),
    ...(options.parentCgroup ? ['--parent-cgroup', options.parentCgroup] : []),
    '--cgroup-version',
    String(options.cgroupVersion),
    ...options.cgroups.flatMap((c) => ['--cgroup', c]),
    '--chroot-base-dir',
    resolve(options.chrootBaseDir),
    ...(netns ? ['--netns', netnsPath(netns)] : []),
    ...options.resourceLimits.flatMap((r) => ['--resource-limit', r]),
    '--',
    ...inv.firecrackerArgs,
  ];
}

/** Mount points of /proc/mounts with their type and options (octal escapes such as `\040` decoded). Pure. */
export function parseMounts(text: string): Array<{ path: string; type: string; options: string[] }> {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f.length >= 4)
    .map(([, path, type, opts]) => ({ path: unescape(path), type, options: opts.split(',') }));
}

/**
 * The cgroup directories the jailer creates for VM `id`
 * (`<cgroup_base>/<parent_cgroup>/<id>`): under the cgroup2 mount for v2,
 * under the mount of each controller named in `cgroups` for v1. Pure given
 * the text of /proc/mounts.
 */
export function jailCgroupDirs(options: JailerOptions, execName: string, id: string, mountsText: string): string[] {
  const parent = options.parentCgroup || execName;
  const mounts = parseMounts(mountsText);
  if (options.cgroupVersion === 2) {
    return mounts.filter((m) => m.type === 'cgroup2').map((m) => join(m.path, parent, id));
  }
  const controllers = new Set(options.cgroups.map((c) => c.slice(0, c.indexOf('.'))));
  const dirs = new Set<string>();
  for (const controller of controllers) {
    const mount = mounts.find((m) => m.type === 'cgroup' && m.options.includes(controller));
    if (mount) dirs.add(join(mount.path, parent, id));
  }
  return [...dirs];
}

/**
 * Creates `layout.root` (the jailer accepts an existing one and chowns it).
 * Throws VmmSpawnFailedError when the VM's jail already exists (a previous
 * VM with this id was not cleaned up: its files must not be reused).
 */
export function createJail(layout: JailLayout): void {
  if (existsSync(layout.jailDir)) {
    throw new VmmSpawnFailedError(`jail directory ${layout.jailDir} already exists; remove it (a VM with this id was not cleaned up)`);
  }
  mkdirSync(layout.root, { recursive: true, mode: 0o755 });
}

/**
 * Removes the VM's jail directory and the cgroup directories the jailer
 * made for it. Call after Firecracker exited (a cgroup with a live process
 * cannot be removed; that failure is ignored and reported by the return).
 * Idempotent; returns what could not be removed.
 */
export function removeJail(layout: JailLayout, cgroupDirs: readonly string[]): string[] {
  const left: string[] = [];
  // Guard against a layout that is not <base>/<exec>/<id>: never delete a base directory.
  if (basename(layout.root) === 'root' && layout.jailDir.split('/').filter(Boolean).length >= 3) {
    rmSync(layout.jailDir, { recursive: true, force: true });
  }
  for (const dir of cgroupDirs) {
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') left.push(`${dir} (${(err as NodeJS.ErrnoException).code})`);
    }
  }
  return left;
}

function permits(st: Stats, owner: JailOwner, bit: 4 | 2): boolean {
  if (owner.uid === 0) return true;
  if (st.uid === owner.uid) return (st.mode & (bit << 6)) !== 0;
  if (st.gid === owner.gid) return (st.mode & (bit << 3)) !== 0;
  return (st.mode & bit) !== 0;
}

/** Changes owner when this process may (root); elsewhere the jailer could not run anyway. */
function chownIfRoot(path: string, owner: JailOwner): void {
  if (process.getuid?.() === 0) chownSync(path, owner.uid, owner.gid);
}

/**
 * Makes host file `source` visible in the jail as `/<name>` and returns that
 * chroot path. A hard link when the jail user can already use the file (no
 * copy, no change to the original); otherwise a copy owned by the jail user
 * (the original keeps its owner and mode). A writable file (a read-write
 * drive) must stay the same file, so it is linked and chowned to the jail
 * user, and refused when it cannot be linked (another filesystem).
 * Throws InvalidArgumentError when `source` is missing or cannot be placed.
 */
export function placeInJail(root: string, source: string, name: string, owner: JailOwner, options: { writable?: boolean } = {}): string {
  const dest = join(root, name);
  if (!existsSync(source)) throw new InvalidArgumentError(`${source} does not exist; cannot place it in the jail ${root}`);
  try {
    linkSync(source, dest);
    const st = statSync(dest);
    if (options.writable) {
      if (!permits(st, owner, 2) || !permits(st, owner, 4)) chownIfRoot(dest, owner);
      return `/${name}`;
    }
    if (permits(st, owner, 4)) return `/${name}`;
    unlinkSync(dest); // the jail user cannot read it: copy rather than change the original's owner
  } catch (err) {
    if (options.writable) {
      throw new InvalidArgumentError(
        `cannot hard-link read-write file ${source} into the jail ${root} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); keep it on the same filesystem as vmm.firecracker.jailer.chroot_base_dir`,
        { cause: err },
      );
    }
  }
  try {
    // FICLONE: a reflink where the filesystem supports it, else a plain copy.
    copyFileSync(source, dest, constants.COPYFILE_FICLONE);
    chownIfRoot(dest, owner);
  } catch (err) {
    throw new InvalidArgumentError(`cannot copy ${source} into the jail ${root}: ${(err as Error).message}`, { cause: err });
  }
  return `/${name}`;
}

/**
 * Creates an empty regular file or FIFO that the jailed (or plain)
 * Firecracker writes to: Firecracker opens log and metrics paths without
 * creating them. Owned by `owner` when given (the jail user).
 */
export async function createSinkFile(path: string, kind: 'file' | 'fifo', owner?: JailOwner): Promise<void> {
  if (kind === 'fifo') {
    await runCommand('mkfifo', ['-m', '0600', path], { timeoutMs: 10_000, hint: 'mkfifo is part of coreutils' });
  } else {
    writeFileSync(path, '', { flag: 'wx', mode: 0o600 });
  }
  if (owner) chownIfRoot(path, owner);
}

/** The text of /proc/mounts, or '' where it cannot be read. */
export function readMounts(): string {
  try {
    return readFileSync('/proc/mounts', 'utf8');
  } catch {
    return '';
  }
}
