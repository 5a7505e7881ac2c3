/**
 * Least privilege: per-VM uids (leases), the QEMU sandbox setting, and the
 * file modes of the data dir, database, logs and golden snapshots
 * (docs/security.md). Owns no processes; drivers and the store call it.
 */
export { QEMU_SANDBOX, uidLeaseDir, vmmPrivilegeFrom, type VmmPrivilege } from './privilege.js';
export { UidLeases, uidsInUse, type UidLease, type UidRange } from './uid-leases.js';
export { ensurePrivateDir, ensurePrivateFile, isSealed, sealReadOnly, tighten } from './file-modes.js';
export { privilegeChecks, type PrivilegeCheck } from './doctor.js';
