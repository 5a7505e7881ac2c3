/**
 * JSON schemas of the routes of snapshots of running VMs (take, list, show,
 * roll back, fork, pause to disk; src/api/routes/snapshots.ts,
 * docs/snapshots.md). Re-exported by schemas.ts. The typed client derives
 * its snapshot types from these (src/client/types.ts), so this file imports
 * schemas and constants only (snapshot/live/limits.ts, not the service).
 */
import { MAX_DETACHED_LEASE_MS, MAX_FORK_COUNT, MAX_SNAPSHOT_NAME_LENGTH, SNAPSHOT_ID_PATTERN, SNAPSHOT_NAME_PATTERN } from '../snapshot/live/limits.js';
import { VmBody, VmIdParams } from './schemas-vms.js';

const snapshotId = { type: 'string', pattern: SNAPSHOT_ID_PATTERN } as const;

export const SnapshotIdParams = { type: 'object', required: ['id'], properties: { id: snapshotId } } as const;

/** Host paths of a snapshot's files, under the data dir. */
export const SnapshotFiles = {
  type: 'object',
  required: ['state', 'scratch', 'memory'],
  properties: {
    state: { type: 'string', description: 'device state (QEMU: a migration stream that also holds all guest memory)' },
    scratch: { type: ['string', 'null'], description: "copy of the VM's scratch disk; null when it had none" },
    memory: { type: ['string', 'null'], description: 'guest memory in a file of its own (Firecracker); null when the state file holds it (QEMU)' },
  },
} as const;

export const SnapshotBody = {
  type: 'object',
  required: ['id', 'vm_id', 'name', 'created_at', 'profile', 'driver', 'size_bytes', 'pause_ms', 'files'],
  properties: {
    id: { type: 'string' },
    vm_id: { type: 'string', description: 'the VM it was taken of (it may be gone since)' },
    name: { type: ['string', 'null'], description: 'named snapshots outlive their VM; unnamed ones go with it' },
    created_at: { type: 'string', description: 'ISO time' },
    profile: { type: 'string' },
    driver: { type: 'string' },
    size_bytes: { type: 'integer', description: 'bytes of its files on disk' },
    pause_ms: { type: 'number', description: 'how long the VM was paused while it was written' },
    files: SnapshotFiles,
  },
} as const;

export const CreateSnapshotRequest = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    name: {
      type: 'string',
      minLength: 1,
      maxLength: MAX_SNAPSHOT_NAME_LENGTH,
      pattern: SNAPSHOT_NAME_PATTERN,
      description: 'keeps the snapshot after its VM is destroyed; A-Z a-z 0-9 . _ -, starting with a letter or digit, unique',
    },
  },
} as const;

export const SnapshotCreatedResponse = {
  type: 'object',
  required: ['snapshot_id', 'pause_ms', 'size_bytes', 'snapshot'],
  properties: { snapshot_id: { type: 'string' }, pause_ms: { type: 'number' }, size_bytes: { type: 'integer' }, snapshot: SnapshotBody },
} as const;

export const SnapshotListQuery = { type: 'object', additionalProperties: false, properties: { vm_id: VmIdParams.properties.id } } as const;

export const SnapshotListResponse = {
  type: 'object',
  required: ['snapshots'],
  properties: { snapshots: { type: 'array', items: SnapshotBody, description: 'newest first' } },
} as const;

export const RollbackRequest = {
  type: 'object',
  required: ['snapshot_id'],
  additionalProperties: false,
  properties: { snapshot_id: { ...snapshotId, description: 'a snapshot of this VM' } },
} as const;

/** The VM after a rollback: same id and network. */
export const RollbackResponse = VmBody;

/** `ttl_ms` of a VM that belongs to no pool (a fork, a VM resumed from disk): its lease, extended by keepalive. */
const detachedTtl = (what: string) =>
  ({
    type: 'integer',
    minimum: 1,
    maximum: MAX_DETACHED_LEASE_MS,
    description: `lease of ${what} (default 600000 = 10 min); POST /v1/vms/{id}/keepalive extends it, expiry destroys the VM`,
  }) as const;

export const ForkRequest = {
  type: 'object',
  required: ['count'],
  additionalProperties: false,
  properties: {
    count: { type: 'integer', minimum: 1, maximum: MAX_FORK_COUNT },
    ttl_ms: detachedTtl('each fork'),
  },
} as const;

/** POST /v1/vms/{id}/resume: for a VM paused to disk, the lease it runs under once back (ignored for a VM paused in memory). */
export const ResumeRequest = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    ttl_ms: detachedTtl('a VM resumed from disk'),
  },
} as const;

export const ForkResponse = { type: 'object', required: ['vms'], properties: { vms: { type: 'array', items: VmBody } } } as const;

/** POST /v1/vms/{id}/pause: no body (or no `persist`) pauses in memory. */
export const PauseRequest = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    persist: { type: 'boolean', description: 'write the VM to disk and free its memory (live-snapshot daemons); resume brings it back, also after a restart' },
  },
} as const;

/** POST /v1/vms/{id}/pause {persist: true}: the VM is on disk, its memory freed. */
export const PausedToDiskResponse = {
  type: 'object',
  required: ['id', 'state', 'snapshot'],
  properties: {
    id: { type: 'string' },
    state: { type: 'string', enum: ['paused_to_disk'] },
    snapshot: { ...SnapshotBody, description: 'the snapshot resume restores (it stays until then, even unnamed)' },
  },
} as const;

/** POST /v1/vms/{id}/pause: the VM (paused in memory) or, with persist, PausedToDiskResponse. */
export const PauseResponse = { anyOf: [VmBody, PausedToDiskResponse] } as const;

/** POST /v1/vms/{id}/resume: the VM (also one paused to disk, restored under its id). */
export const ResumeResponse = VmBody;
