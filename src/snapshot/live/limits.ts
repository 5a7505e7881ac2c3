/**
 * Bounds and formats of snapshots of running VMs, shared by the service
 * (live-snapshots.ts) and the REST API's schemas
 * (src/api/schemas-snapshots.ts). Constants only, no imports: the published
 * client's types are derived from those schemas, so this file is part of the
 * client's import graph and must stay free of anything that runs VMs.
 */

/** Lease of a fork or a VM resumed from disk when the request names none (the pools' default lease_ms, 10 min). */
export const DEFAULT_DETACHED_LEASE_MS = 600_000;
/** Longest lease a fork, resume or keepalive of one may ask for (the pools' default max_lease_ms, 24 h). */
export const MAX_DETACHED_LEASE_MS = 86_400_000;
/** Most VMs one fork makes. */
export const MAX_FORK_COUNT = 16;
/** Longest snapshot name; names are [A-Za-z0-9._-]. */
export const MAX_SNAPSHOT_NAME_LENGTH = 64;
/** Snapshot names (JSON Schema / RegExp source): A-Z a-z 0-9 . _ -, starting with a letter or digit. */
export const SNAPSHOT_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]*$';
/** Snapshot ids (JSON Schema / RegExp source): "snap-" and 12 hex digits. */
export const SNAPSHOT_ID_PATTERN = '^snap-[0-9a-f]{12}$';
export const SNAPSHOT_NAME_RE = new RegExp(SNAPSHOT_NAME_PATTERN);
export const SNAPSHOT_ID_RE = new RegExp(SNAPSHOT_ID_PATTERN);
