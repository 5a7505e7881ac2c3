import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.js';
import { AllocateRequest, ErrorBody, PoolBody, PoolNameParams, VmBody } from '../schemas.js';
import { viewOf } from '../vm-view.js';

export function poolRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/v1/pools',
    { schema: { summary: 'List pools', response: { 200: { type: 'object', properties: { pools: { type: 'array', items: PoolBody } } } } } },
    async () => ({
      pools: deps.pools.list(),
    }),
  );

  app.get<{ Params: { name: string } }>(
    '/v1/pools/:name',
    { schema: { summary: 'One pool: bounds, target and counts', params: PoolNameParams, response: { 200: PoolBody, 404: ErrorBody } } },
    async (req) => deps.pools.get(req.params.name).status(),
  );

  app.post<{ Params: { name: string }; Body: { owner?: string; timeout_ms?: number; ttl_ms?: number } }>(
    '/v1/pools/:name/allocate',
    {
      schema: {
        summary: 'Allocate a ready VM (resumed, agent answering) with a lease (ttl_ms); waits in line (FIFO) when none is ready',
        params: PoolNameParams,
        body: AllocateRequest,
        response: {
          201: { type: 'object', required: ['vm', 'allocation_ms'], properties: { vm: VmBody, allocation_ms: { type: 'number' } } },
          400: ErrorBody,
          404: ErrorBody,
          503: ErrorBody,
        },
      },
    },
    async (req, reply) => {
      const pool = deps.pools.get(req.params.name);
      const { member, allocationMs, waitMs, checkMs } = await pool.allocate({
        owner: req.body?.owner,
        timeoutMs: req.body?.timeout_ms,
        ttlMs: req.body?.ttl_ms,
      });
      deps.metrics?.allocation(pool.name, allocationMs);
      // Where the time went in the daemon (docs/pools.md#allocation): queued for a VM, resume + agent ping, the whole allocation.
      reply.header('server-timing', `wait;dur=${waitMs}, check;dur=${checkMs}, allocate;dur=${allocationMs}`);
      reply.code(201);
      return { vm: viewOf(deps, member.vm), allocation_ms: allocationMs };
    },
  );
}
