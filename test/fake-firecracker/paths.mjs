/**
 * Paths as the fake Firecracker opens them. Run by the fake jailer, it gets
 * FAKE_FC_CHROOT = the jail's root directory and, like a jailed Firecracker
 * after pivot_root, resolves every path it is given (API socket, kernel,
 * drives, vsock, log, metrics, snapshots) inside it: `/vmlinux` is
 * `<root>/vmlinux`, and `..` cannot climb out. Without it, paths are the
 * host's (relative ones against the working directory, as Firecracker).
 */
import { join, resolve } from 'node:path';

const CHROOT = process.env.FAKE_FC_CHROOT || null;

/** The host path of `path` as this (possibly jailed) fake sees it. */
export function hostPath(path) {
  if (!CHROOT || typeof path !== 'string') return path;
  return join(CHROOT, resolve('/', path));
}
