import type { FastifyInstance } from 'fastify';
import { InvalidStateError } from '../../errors/index.js';
import type { ApiDeps } from '../deps.js';
import { ErrorBody, VmBody, VmIdParams } from '../schemas.js';
import { liveVm, viewOf } from '../vm-view.js';

/**
 * Allocation leases over HTTP: POST /v1/vms/{id}/keepalive renews the lease
 * of an allocated pool VM. Only translates the request; the pool owns the
 * lease rules (docs/pools.md#leases).
 */

const KeepaliveRequest = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    ttl_ms: { type: 'integer', minimum: 1, description: 'new lease from now (default: the TTL the VM was allocated with; at most the pool max_lease_ms)' },
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
      if (!pool) throw new InvalidStateError(`VM ${vm.id} is not from a pool, so it has no lease to extend`, { details: { vm_id: vm.id } });
      pool.keepalive(vm.id, req.body?.ttl_ms ?? undefined);
      return viewOf(deps, vm);
    },
  );
}
