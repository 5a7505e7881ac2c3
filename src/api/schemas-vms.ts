/**
 * JSON schemas of a VM (its view and its id), in a file of their own so the
 * snapshot schemas (schemas-snapshots.ts) can use them without an import
 * cycle through schemas.ts, which re-exports both.
 */

export const Phase = { type: 'object', required: ['name', 'ms'], properties: { name: { type: 'string' }, ms: { type: 'number' } } } as const;

export const VmBody = {
  type: 'object',
  required: ['id', 'state', 'profile', 'driver'],
  properties: {
    id: { type: 'string' },
    pool: { type: ['string', 'null'] },
    profile: { type: 'string' },
    state: { type: 'string', enum: ['creating', 'booting', 'running', 'paused', 'stopping', 'stopped', 'failed'] },
    driver: { type: 'string' },
    accel: { type: 'string' },
    created_by: { type: 'string', enum: ['boot', 'restore'] },
    allocated: { type: 'boolean' },
    owner: { type: ['string', 'null'] },
    uses: { type: 'integer' },
    phases: { type: 'array', items: Phase },
    network: {
      type: ['object', 'null'],
      properties: { host_address: { type: 'string' }, guest_ip: { type: 'string' }, netns: { type: 'string' } },
    },
    created_at: { type: 'string' },
    expires_at: { type: ['string', 'null'], description: 'allocated VMs: when the lease runs out (ISO time); extend with POST /v1/vms/{id}/keepalive' },
    state_reason: { type: ['string', 'null'], description: 'VMs that are gone: why the last state change happened (e.g. "lease expired")' },
    error: {
      type: ['object', 'null'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      description: 'why the VM failed (a failed VM keeps it)',
    },
  },
} as const;

// A local id (`vm-…`) or, in cluster mode, one naming its node (`NODE~vm-…`; docs/cluster.md). The same
// text as CLUSTER_VM_ID_PATTERN of src/cluster/placement.ts (a test checks), written out so the published
// client, which ships this file, does not pull in the cluster layer.
export const VmIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^(?:([a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?)~)?(vm-[0-9a-f]{12})$' } },
} as const;
