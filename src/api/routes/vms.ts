import type { FastifyInstance } from 'fastify';
import { InvalidArgumentError } from '../../errors/index.js';
import type { ApiDeps } from '../deps.js';
import { ErrorBody, ExecRequest, ExecResponse, FileQuery, GuestNetworkRequest, VmBody, VmIdParams } from '../schemas.js';
import { allocatedVm, liveVm, viewById, viewOf } from '../vm-view.js';

type IdParams = { Params: { id: string } };

export function vmRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/v1/vms', { schema: { summary: 'VMs this daemon runs (ready and allocated)', response: { 200: { type: 'object', properties: { vms: { type: 'array', items: VmBody } } } } } }, async () => ({
    vms: deps.service.list().map((vm) => viewOf(deps, vm)),
  }));

  app.get<IdParams>('/v1/vms/:id', { schema: { summary: 'One VM with its boot or restore phases', params: VmIdParams, response: { 200: VmBody, 404: ErrorBody } } }, async (req) =>
    viewById(deps, req.params.id),
  );

  app.post<IdParams & { Body: { cmd: string[]; stdin?: string; env?: Record<string, string>; cwd?: string; timeout_ms?: number } }>(
    '/v1/vms/:id/exec',
    { schema: { summary: 'Run a command in the guest (argv, no shell)', params: VmIdParams, body: ExecRequest, response: { 200: ExecResponse, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody } } },
    async (req) => {
      const vm = allocatedVm(deps, req.params.id);
      const r = await vm.exec({ argv: req.body.cmd, stdin: req.body.stdin, env: req.body.env, cwd: req.body.cwd, timeoutMs: req.body.timeout_ms });
      return {
        exit_code: r.exitCode,
        signal: r.signal,
        timed_out: r.timedOut,
        stdout: r.stdout.toString('utf8'),
        stderr: r.stderr.toString('utf8'),
        stdout_truncated: r.stdoutTruncated,
        stderr_truncated: r.stderrTruncated,
        duration_ms: r.durationMs,
      };
    },
  );

  app.put<IdParams & { Querystring: { path: string; mode?: string }; Body: Buffer }>(
    '/v1/vms/:id/files',
    { schema: { summary: 'Upload a file (body: raw bytes, Content-Type application/octet-stream)', params: VmIdParams, querystring: FileQuery, response: { 404: ErrorBody } } },
    async (req, reply) => {
      if (!Buffer.isBuffer(req.body)) throw new InvalidArgumentError('send the file as the raw request body with Content-Type: application/octet-stream');
      const vm = allocatedVm(deps, req.params.id);
      await vm.writeFile(req.query.path, req.body, { mkdirs: true, ...(req.query.mode ? { mode: parseInt(req.query.mode, 8) } : {}) });
      reply.code(204);
    },
  );

  app.get<IdParams & { Querystring: { path: string } }>(
    '/v1/vms/:id/files',
    { schema: { summary: 'Download a file (raw bytes)', params: VmIdParams, querystring: FileQuery, response: { 404: ErrorBody } } },
    async (req, reply) => {
      const vm = allocatedVm(deps, req.params.id);
      const file = await vm.readFile(req.query.path);
      reply.header('content-type', 'application/octet-stream');
      if (file.truncated) reply.header('x-tfc-truncated', 'true');
      return file.data;
    },
  );

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

  app.post<IdParams>('/v1/vms/:id/pause', { schema: { summary: 'Pause a VM', params: VmIdParams, response: { 200: VmBody, 404: ErrorBody, 409: ErrorBody } } }, async (req) => {
    const vm = allocatedVm(deps, req.params.id);
    await vm.pause();
    return viewOf(deps, vm);
  });

  app.post<IdParams>('/v1/vms/:id/resume', { schema: { summary: 'Resume a paused VM', params: VmIdParams, response: { 200: VmBody, 404: ErrorBody, 409: ErrorBody } } }, async (req) => {
    const vm = allocatedVm(deps, req.params.id);
    await vm.resume();
    return viewOf(deps, vm);
  });

  app.delete<IdParams>(
    '/v1/vms/:id',
    { schema: { summary: 'Release an allocated VM (fresh pools destroy it; reuse pools keep it for its owner)', params: VmIdParams, response: { 404: ErrorBody, 409: ErrorBody } } },
    async (req, reply) => {
      const vm = liveVm(deps, req.params.id);
      const pool = deps.pools.poolOf(vm.id);
      if (pool) await pool.release(vm.id);
      else await deps.service.destroy(vm, 'deleted through the API');
      reply.code(204);
    },
  );
}
