import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.js';
import type { ApiLimits } from '../limits.js';
import type { FromSchema } from 'json-schema-to-ts';
import {
  ErrorBody,
  ExecRequest,
  ExecResponse,
  GuestNetworkRequest,
  PauseRequest,
  PauseResponse,
  ResumeRequest,
  ResumeResponse,
  VmBody,
  VmIdParams,
} from '../schemas.js';
import { checkExec, type ExecBody } from '../validation.js';
import { fileRoutes } from './files.js';
import { allocatedVm, liveVm, viewById, viewOf } from '../vm-view.js';
import { pauseToDisk, resumeFromDisk } from './snapshots.js';

type IdParams = { Params: { id: string } };

/** VM routes: inspect, exec, files, network, pause/resume, release. Requests are checked against `limits` before anything reaches a VM. */
export function vmRoutes(app: FastifyInstance, deps: ApiDeps, limits: ApiLimits): void {
  app.get(
    '/v1/vms',
    {
      schema: {
        summary: 'VMs this daemon runs (ready and allocated)',
        response: { 200: { type: 'object', properties: { vms: { type: 'array', items: VmBody } } } },
      },
    },
    async () => ({
      vms: deps.service.list().map((vm) => viewOf(deps, vm)),
    }),
  );

  app.get<IdParams>(
    '/v1/vms/:id',
    { schema: { summary: 'One VM with its boot or restore phases', params: VmIdParams, response: { 200: VmBody, 404: ErrorBody } } },
    async (req) => viewById(deps, req.params.id),
  );

  app.post<IdParams & { Body: ExecBody }>(
    '/v1/vms/:id/exec',
    {
      schema: {
        summary: 'Run a command in the guest (argv, no shell)',
        params: VmIdParams,
        body: ExecRequest,
        response: { 200: ExecResponse, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody },
      },
    },
    async (req) => {
      // Checked before the VM is looked up: a bad request is the client's fault whatever the VM's state.
      const { outputEncoding, ...request } = checkExec(req.body, limits);
      const vm = allocatedVm(deps, req.params.id);
      const r = await vm.exec(request);
      return {
        exit_code: r.exitCode,
        signal: r.signal,
        timed_out: r.timedOut,
        stdout: r.stdout.toString(outputEncoding),
        stderr: r.stderr.toString(outputEncoding),
        output_encoding: outputEncoding,
        stdout_truncated: r.stdoutTruncated,
        stderr_truncated: r.stderrTruncated,
        duration_ms: r.durationMs,
      };
    },
  );

  fileRoutes(app, deps, limits);

  app.put<IdParams & { Body: { address: string; prefix: number; gateway: string } }>(
    '/v1/vms/:id/network',
    {
      schema: {
        summary: "Re-address the guest's eth0 through the agent (networked VMs)",
        params: VmIdParams,
        body: GuestNetworkRequest,
        response: { 200: VmBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req) => {
      const vm = allocatedVm(deps, req.params.id);
      await vm.configureGuestNetwork(req.body);
      return viewOf(deps, vm);
    },
  );

  app.post<IdParams & { Body: FromSchema<typeof PauseRequest> }>(
    '/v1/vms/:id/pause',
    {
      schema: {
        summary: 'Pause a VM; {persist: true} writes it to disk and frees its memory (resume brings it back, also after a daemon restart)',
        params: VmIdParams,
        body: PauseRequest,
        response: { 200: PauseResponse, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 501: ErrorBody },
      },
    },
    async (req) => {
      // {persist: true}: pause to disk (docs/snapshots.md); routes/snapshots.ts.
      if (req.body?.persist) return pauseToDisk(deps, req.params.id);
      const vm = allocatedVm(deps, req.params.id);
      await vm.pause();
      return viewOf(deps, vm);
    },
  );

  app.post<IdParams & { Body: FromSchema<typeof ResumeRequest> }>(
    '/v1/vms/:id/resume',
    {
      schema: {
        summary: 'Resume a paused VM (in memory, or from disk: then under a lease of ttl_ms)',
        params: VmIdParams,
        body: ResumeRequest,
        response: { 200: ResumeResponse, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req) => {
      const fromDisk = await resumeFromDisk(deps, req.params.id, req.body?.ttl_ms === undefined ? {} : { ttlMs: req.body.ttl_ms });
      if (fromDisk) return fromDisk;
      const vm = allocatedVm(deps, req.params.id);
      await vm.resume();
      return viewOf(deps, vm);
    },
  );

  app.delete<IdParams>(
    '/v1/vms/:id',
    {
      schema: {
        summary: 'Release an allocated VM (fresh pools destroy it; reuse pools keep it for its owner)',
        params: VmIdParams,
        response: { 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req, reply) => {
      const vm = liveVm(deps, req.params.id);
      const pool = deps.pools.poolOf(vm.id);
      if (pool) await pool.release(vm.id);
      else await deps.service.destroy(vm, 'deleted through the API');
      reply.code(204);
    },
  );
}
