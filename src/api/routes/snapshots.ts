import type { FastifyInstance } from 'fastify';
import type { FromSchema } from 'json-schema-to-ts';
import { SnapshotUnsupportedError } from '../../errors/index.js';
import type { LiveSnapshotRecord } from '../../store/index.js';
import { MAX_FORK_COUNT, type LiveSnapshotService } from '../../snapshot/live/index.js';
import type { ApiDeps } from '../deps.js';
import {
  CreateSnapshotRequest,
  ErrorBody,
  ForkRequest,
  ForkResponse,
  RollbackRequest,
  RollbackResponse,
  SnapshotBody,
  SnapshotCreatedResponse,
  SnapshotIdParams,
  SnapshotListQuery,
  SnapshotListResponse,
  VmIdParams,
  type PausedToDiskResponse,
} from '../schemas.js';
import { allocatedVm, viewOf } from '../vm-view.js';

type IdParams = { Params: { id: string } };

/** The API/CLI JSON shape of a snapshot of a running VM: the type of its schema (schemas-snapshots.ts), so the two cannot drift. */
export type LiveSnapshotView = FromSchema<typeof SnapshotBody>;

/** The answer of POST /v1/vms/{id}/pause {persist: true}. */
export type PausedToDiskView = FromSchema<typeof PausedToDiskResponse>;

export function liveSnapshotView(r: LiveSnapshotRecord): LiveSnapshotView {
  return {
    id: r.id,
    vm_id: r.vmId,
    name: r.name,
    created_at: r.createdAt,
    profile: r.profile,
    driver: r.driver,
    size_bytes: r.sizeBytes,
    pause_ms: r.pauseMs,
    files: { state: r.files.state, scratch: r.files.scratch ?? null, memory: r.files.memory ?? null },
  };
}

function live(deps: ApiDeps): LiveSnapshotService {
  if (!deps.liveSnapshots) throw new SnapshotUnsupportedError('snapshots of running VMs are not enabled in this server');
  return deps.liveSnapshots;
}

/**
 * Snapshots of running VMs (docs/snapshots.md): take, list, show, delete,
 * roll back, fork. Forked VMs belong to the API like allocated VMs: they
 * are listed by GET /v1/vms and go with DELETE /v1/vms/{id}.
 */
export function snapshotRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post<IdParams & { Body: FromSchema<typeof CreateSnapshotRequest>; Reply: FromSchema<typeof SnapshotCreatedResponse> }>(
    '/v1/vms/:id/snapshots',
    {
      schema: {
        summary: 'Snapshot a running VM (memory, device state, scratch disk); the VM keeps running',
        params: VmIdParams,
        body: CreateSnapshotRequest,
        response: { 201: SnapshotCreatedResponse, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 501: ErrorBody },
      },
    },
    async (req, reply) => {
      const service = live(deps);
      const vm = allocatedVm(deps, req.params.id);
      const name = req.body?.name;
      const r = await service.snapshot(vm, name !== undefined ? { name } : {});
      reply.code(201);
      return { snapshot_id: r.id, pause_ms: r.pauseMs, size_bytes: r.sizeBytes, snapshot: liveSnapshotView(r) };
    },
  );

  app.get<{ Querystring: FromSchema<typeof SnapshotListQuery>; Reply: FromSchema<typeof SnapshotListResponse> }>(
    '/v1/snapshots',
    {
      schema: {
        summary: 'Snapshots of running VMs, newest first (optionally of one VM)',
        querystring: SnapshotListQuery,
        response: { 200: SnapshotListResponse, 400: ErrorBody, 501: ErrorBody },
      },
    },
    async (req) => ({
      snapshots: live(deps)
        .list(req.query.vm_id ? { vmId: req.query.vm_id } : {})
        .map(liveSnapshotView),
    }),
  );

  app.get<IdParams & { Reply: LiveSnapshotView }>(
    '/v1/snapshots/:id',
    { schema: { summary: 'One snapshot of a running VM', params: SnapshotIdParams, response: { 200: SnapshotBody, 404: ErrorBody, 501: ErrorBody } } },
    async (req) => liveSnapshotView(live(deps).get(req.params.id)),
  );

  app.delete<IdParams>(
    '/v1/snapshots/:id',
    { schema: { summary: 'Delete a snapshot and its files', params: SnapshotIdParams, response: { 404: ErrorBody, 501: ErrorBody } } },
    async (req, reply) => {
      live(deps).delete(req.params.id);
      reply.code(204);
    },
  );

  app.post<IdParams & { Body: FromSchema<typeof RollbackRequest> }>(
    '/v1/vms/:id/rollback',
    {
      schema: {
        summary: 'Put a VM back into the state of one of its snapshots (same id, same network)',
        params: VmIdParams,
        body: RollbackRequest,
        response: { 200: RollbackResponse, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 501: ErrorBody },
      },
    },
    async (req) => {
      const vm = allocatedVm(deps, req.params.id);
      await live(deps).rollback(vm, req.body.snapshot_id);
      return viewOf(deps, vm);
    },
  );

  app.post<IdParams & { Body: FromSchema<typeof ForkRequest> }>(
    '/v1/snapshots/:id/fork',
    {
      schema: {
        summary: `New VMs restored from a snapshot (1..${MAX_FORK_COUNT}), each with its own network and entropy; DELETE /v1/vms/{id} ends them`,
        params: SnapshotIdParams,
        body: ForkRequest,
        response: { 201: ForkResponse, 400: ErrorBody, 404: ErrorBody, 501: ErrorBody },
      },
    },
    async (req, reply) => {
      const vms = await live(deps).fork(req.params.id, req.body.count, req.body.ttl_ms === undefined ? {} : { ttlMs: req.body.ttl_ms });
      reply.code(201);
      return { vms: vms.map((vm) => viewOf(deps, vm)) };
    },
  );
}

/**
 * POST /v1/vms/{id}/pause {persist: true}: snapshot the VM to disk, then
 * stop it (its memory, VMM, network and run dir are freed; a pool VM leaves
 * its pool). The VM's record stays, `stopped`, until it is resumed.
 */
export async function pauseToDisk(deps: ApiDeps, id: string): Promise<PausedToDiskView> {
  const service = live(deps);
  const vm = allocatedVm(deps, id);
  const record = await service.persist(vm);
  const pool = deps.pools.poolOf(vm.id);
  await deps.service.destroy(vm, 'paused to disk');
  // Stopped first, so a reuse pool recycles its slot instead of parking a stopped VM.
  if (pool) await pool.release(vm.id);
  return { id: vm.id, state: 'paused_to_disk', snapshot: liveSnapshotView(record) };
}

/** POST /v1/vms/{id}/resume of a VM paused to disk (also after a daemon restart): restores it under its id. Null when it is not paused to disk. */
export async function resumeFromDisk(deps: ApiDeps, id: string, options: { ttlMs?: number } = {}): Promise<ReturnType<typeof viewOf> | null> {
  if (!deps.liveSnapshots || deps.service.get(id) || !deps.liveSnapshots.persisted(id)) return null;
  return viewOf(deps, await deps.liveSnapshots.revive(id, options));
}
