/**
 * A VM's block devices (docs/disks.md): the image's root filesystem,
 * attached read-only and shared by every VM of the image, and the VM's own
 * scratch disk, a sparse ext4 file made on the host (cold boot) or copied
 * from its golden snapshot (clone). Only host files and kernel arguments;
 * the guest side is stage 1 of init (src/guest/init-script.ts).
 */
import { chmodSync, closeSync, ftruncateSync, openSync } from 'node:fs';
import { InvalidArgumentError } from '../errors/index.js';
import { runCommand } from '../process/index.js';
import type { VmDrive } from '../vmm/driver.js';

/** Name of a VM's scratch disk file in its run dir, and in a golden snapshot's directory. */
export const SCRATCH_DISK_FILE = 'scratch.ext4';

/** Largest scratch disk (config profiles.X.disk_mib): 1 TiB, sparse. */
export const MAX_SCRATCH_DISK_MIB = 1_048_576;

/** The guest devices, in attach order: the root filesystem (when the image has one) is /dev/vda, the scratch disk the next. */
export function launchDrives(rootfsPath: string | undefined, scratchPath: string | undefined): VmDrive[] {
  return [
    ...(rootfsPath ? [{ id: 'rootfs' as const, path: rootfsPath, readOnly: true }] : []),
    ...(scratchPath ? [{ id: 'scratch' as const, path: scratchPath, readOnly: false }] : []),
  ];
}

/**
 * Kernel arguments telling stage 1 of init which device is what. Part of
 * the kernel command line, hence of the golden snapshot key: a clone's
 * memory has these disks mounted, so it gets the same devices in the same order.
 */
export function diskKernelArgs(disks: { rootfs: boolean; scratch: boolean }): string[] {
  const devices = launchDrives(disks.rootfs ? 'rootfs' : undefined, disks.scratch ? 'scratch' : undefined);
  return devices.map((d, i) => `tfc.${d.id === 'rootfs' ? 'root' : 'scratch'}=/dev/vd${String.fromCharCode(97 + i)}`);
}

/**
 * Creates a sparse file of `sizeMib` at `path` (which must not exist) and
 * formats it ext4 on the host. Inode tables are initialised here, not
 * lazily by the guest kernel: a guest writing them in the background would
 * change the disk after its golden snapshot was taken. The journal is not
 * zeroed (lazy_journal_init): a new sparse file reads as zeros already.
 * Throws InvalidArgumentError for a bad size, ProcessFailedError when
 * mke2fs fails or is missing (e2fsprogs).
 */
export async function createScratchDisk(path: string, sizeMib: number): Promise<void> {
  if (!Number.isInteger(sizeMib) || sizeMib < 1 || sizeMib > MAX_SCRATCH_DISK_MIB) {
    throw new InvalidArgumentError(`disk_mib must be an integer from 1 to ${MAX_SCRATCH_DISK_MIB}, got ${sizeMib}`);
  }
  const fd = openSync(path, 'wx', 0o600);
  try {
    ftruncateSync(fd, sizeMib * 1024 * 1024);
  } finally {
    closeSync(fd);
  }
  await runCommand('mke2fs', ['-q', '-F', '-t', 'ext4', '-m', '0', '-L', 'scratch', '-E', 'lazy_itable_init=0,lazy_journal_init=1,root_owner=0:0', path], {
    timeoutMs: 120_000,
    hint: 'install e2fsprogs (`apt-get install e2fsprogs`)',
  });
}

/**
 * Copies a golden snapshot's scratch disk for one clone, keeping its holes
 * (and sharing its blocks where the filesystem can reflink), as mode 0600.
 * Throws ProcessFailedError when the copy fails.
 */
export async function copyScratchDisk(source: string, dest: string): Promise<void> {
  await runCommand('cp', ['--sparse=always', '--reflink=auto', '--no-preserve=all', '-T', source, dest], { timeoutMs: 300_000 });
  chmodSync(dest, 0o600);
}
