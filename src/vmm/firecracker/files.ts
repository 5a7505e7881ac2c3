/**
 * Where one Firecracker's files live and how it names them: in the VM's run
 * directory (paths as on the host), or in its jail (paths relative to the
 * jail's root, files linked or copied in). Steps ask this object instead of
 * knowing whether the VMM is jailed.
 */
import { basename, dirname, join } from 'node:path';
import { placeInJail, type JailLayout, type JailOwner } from './jailer.js';

/** Names of the files Firecracker uses in its home directory. */
export const VMM_FILE_NAMES = {
  apiSocket: 'firecracker.sock',
  /**
   * The hybrid vsock socket. Given to Firecracker as this *relative* path,
   * resolved against its working directory (the run dir, or the jail's /):
   * the path is saved in snapshots, so every clone binds its own socket in
   * its own directory without `vsock_override` (a recent addition to
   * /snapshot/load that older releases refuse as an unknown field).
   */
  vsock: 'vsock.sock',
  log: 'firecracker.log',
  metrics: { file: 'metrics.json', fifo: 'metrics.fifo' },
} as const;

/** Where one Firecracker's files are, on the host and as Firecracker names them. */
export interface VmmFiles {
  /** Firecracker's working directory on the host: the VM's run dir, or the jail root. */
  readonly home: string;
  /** The jail, when Firecracker runs under the jailer. */
  readonly jail: { layout: JailLayout; owner: JailOwner } | null;
  /** Host path of file `name` in `home`. */
  hostPath(name: string): string;
  /** How Firecracker names file `name` of `home`: `/name` in a jail, the host path otherwise. */
  vmmPath(name: string): string;
  /**
   * Makes existing host file `source` usable by Firecracker and returns the
   * path to send in API bodies: the path itself when not jailed, else the
   * file linked or copied into the jail as `name` (see placeInJail).
   */
  expose(source: string, name: string, options?: { writable?: boolean }): string;
}

/**
 * A VMM that is not jailed: files in the VM's run dir, host paths in API
 * bodies, except that a file directly in the run dir is named relative to
 * it (Firecracker's working directory). A snapshot records drive paths, so
 * a clone then opens its own copy (its scratch disk in its own run dir),
 * not the template's. Pure.
 */
export function runDirFiles(runDir: string): VmmFiles {
  return {
    home: runDir,
    jail: null,
    hostPath: (name) => join(runDir, name),
    vmmPath: (name) => join(runDir, name),
    expose: (source) => (dirname(source) === runDir ? basename(source) : source),
  };
}

/** A jailed VMM: files in the jail root, chroot paths in API bodies, host files placed by `expose`. */
export function jailFiles(layout: JailLayout, owner: JailOwner): VmmFiles {
  return {
    home: layout.root,
    jail: { layout, owner },
    hostPath: (name) => join(layout.root, name),
    vmmPath: (name) => `/${name}`,
    expose: (source, name, options) => placeInJail(layout.root, source, name, owner, options),
  };
}
