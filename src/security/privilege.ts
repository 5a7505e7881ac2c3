/**
 * The privilege model VMMs run under (docs/security.md): whether to drop
 * privileges, the uid range and its leases, and the QEMU -sandbox setting.
 * Built once from the config by the driver factory; drivers only read it.
 */
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import { UidLeases } from './uid-leases.js';

/**
 * QEMU's seccomp sandbox. `elevateprivileges` stays `allow` because QEMU
 * 7.2 applies the filter before -runas calls setgid/setuid, and `deny`
 * kills it with SIGSYS at that point (measured; docs/security.md). Once the
 * uid is dropped (real, effective and saved), set*id calls cannot raise it
 * again, and spawn=deny forbids exec of a set-uid program.
 */
export const QEMU_SANDBOX = 'on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny';

/** What a driver needs to run a VMM unprivileged; null = run as this process's user, unsandboxed. */
export interface VmmPrivilege {
  leases: UidLeases;
}

/** Where uid leases of a data dir live. */
export function uidLeaseDir(dataDir: string): string {
  return join(dataDir, 'run', 'uids');
}

/**
 * The privilege settings of `config`: null when `security.drop_privileges`
 * is false or this process is not root (an unprivileged user cannot switch
 * uids; the VMM then runs as that user, which is already unprivileged).
 */
export function vmmPrivilegeFrom(config: Pick<Config, 'dataDir' | 'security'>): VmmPrivilege | null {
  if (!config.security.dropPrivileges || process.getuid?.() !== 0) return null;
  return { leases: new UidLeases(uidLeaseDir(config.dataDir), { start: config.security.uidRangeStart, count: config.security.uidCount }) };
}
