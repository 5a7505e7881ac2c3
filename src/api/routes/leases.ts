import type { FastifyInstance } from 'fastify';
import { InvalidStateError } from '../../errors/index.js';
import type { ApiDeps } from '../deps.js';
import { ErrorBody, VmBody, VmIdParams } from '../schemas.js';
import { liveVm, viewOf } from '../vm-view.js';

/**
 * Leases over HTTP: POST /v1/vms/{id}/keepalive renews the lease of an
 * allocated pool VM, or of a fork or a VM resumed from disk (which belong
 * to no pool). Only translates the request; the pool (docs/pools.md#leases)
 * or the snapshot service (docs/snapshots.md) owns the lease rules.
 */

const KeepaliveRequest = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    ttl_ms: {
      type: 'integer',
      minimum: 1,
      description: 'new lease from now (default: the TTL the VM was allocated, forked or resumed with; at most the pool max_lease_ms, 24 h for forks)',
    },
  },
} as const;

export function leaseRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post<{ Params: { id: string }; Body: { ttl_ms?: number } | null }>(
    '/v1/vms/:id/keepalive',
    {
      schema: {
        summary: "Extend an allocated VM's lease (expires_at moves to now + ttl_ms)",
        params: VmIdParams,
        body: KeepaliveRequest,
        response: { 200: VmBody, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req) => {
      const vm = liveVm(deps, req.params.id);
      const pool = deps.pools.poolOf(vm.id);
      const detached = deps.liveSnapshots?.leases;
      if (pool) pool.keepalive(vm.id, req.body?.ttl_ms ?? undefined);
      else if (detached?.has(vm.id)) detached.keepalive(vm.id, req.body?.ttl_ms ?? undefined);
      else throw new InvalidStateError(`VM ${vm.id} is not from a pool, a fork or a resume, so it has no lease to extend`, { details: { vm_id: vm.id } });
      return viewOf(deps, vm);
    },
  );
}
