/**
 * Process routes: start a process in a VM, list them, stream a process's
 * output as Server-Sent Events (resumable with Last-Event-ID), write its
 * stdin, signal it, resize its terminal. The records live in the
 * ProcessRegistry (src/processes); these routes only translate HTTP.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InvalidArgumentError, TfcError, VmBusyError } from '../../errors/index.js';
import { ProcessRegistry, type ProcessRecord, type ProcessSignal, type ProcessVm } from '../../processes/index.js';
import type { Vm } from '../../vm/index.js';
import type { ApiDeps } from '../deps.js';
import type { ApiLimits } from '../limits.js';
import { MAX_STDIN_CHUNK_BYTES } from '../limits.js';
import {
  ErrorBody,
  OutputQuery,
  ProcessListResponse,
  ProcessParams,
  ResizeRequest,
  SignalRequest,
  SpawnRequest,
  SpawnResponse,
  StdinRequest,
  StdinResponse,
  VmIdParams,
} from '../schemas.js';
import { lastEventIdOf, startSseResponse, streamProcess } from '../sse.js';
import { checkExec } from '../validation.js';
import { allocatedVm } from '../vm-view.js';

type IdParams = { Params: { id: string } };
type PidParams = { Params: { id: string; pid: string } };
type SpawnBody = { cmd: string[]; env?: Record<string, string>; cwd?: string; pty?: { cols: number; rows: number } };

/** How often records of VMs that were released or stopped are dropped (their streams end). */
const SWEEP_INTERVAL_MS = 1000;
const OP_ERRORS = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 429: ErrorBody, 502: ErrorBody, 504: ErrorBody };

/**
 * Which allocation of a VM a request belongs to: a reuse pool hands one VM
 * out many times, and each allocation starts with no processes.
 */
function generationOf(deps: ApiDeps, vmId: string): number {
  return deps.pools.poolOf(vmId)?.member(vmId)?.uses ?? 0;
}

function wireProcess(r: ProcessRecord) {
  return {
    pid: r.pid,
    cmd: [...r.argv],
    pty: r.pty,
    running: r.running,
    exit_code: r.exit?.exitCode ?? null,
    signal: r.exit?.signal ?? null,
    started_at: r.startedAt.toISOString(),
    duration_ms: r.exit?.durationMs ?? null,
    last_event_id: r.log.nextEventId - 1,
  };
}

/** Last-Event-ID header, else ?last_event_id=, else 0 (the whole kept log); see sse.ts. */
function resumeId(req: FastifyRequest<{ Querystring: { last_event_id?: string } }>): number {
  return lastEventIdOf(req.headers, req.query.last_event_id) ?? 0;
}

/** Decodes stdin data; throws InvalidArgumentError for bad base64 or more than MAX_STDIN_CHUNK_BYTES. */
function stdinBytes(data: string, encoding: 'utf8' | 'base64' | undefined): Buffer {
  if (encoding === 'base64' && !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) throw new InvalidArgumentError('data is not valid base64 (encoding "base64")');
  const bytes = Buffer.from(data, encoding === 'base64' ? 'base64' : 'utf8');
  if (bytes.length > MAX_STDIN_CHUNK_BYTES) {
    throw new InvalidArgumentError(`data is ${bytes.length} bytes; at most ${MAX_STDIN_CHUNK_BYTES} bytes go in one stdin request: split it`, {
      details: { field: 'data', max_bytes: MAX_STDIN_CHUNK_BYTES },
    });
  }
  return bytes;
}

/** The agent refuses stdin beyond what it queues per process: back-pressure for the client, not a fault. */
function stdinFull(err: unknown, pid: number): never {
  if (err instanceof TfcError && err.details?.agent_code === 'STDIN_FULL') {
    throw new VmBusyError(`process ${pid} has not read the stdin sent so far (the guest queues at most 1 MiB per process); retry shortly`, {
      cause: err,
      details: { pid, agent_code: 'STDIN_FULL' },
    });
  }
  throw err;
}

export function processRoutes(app: FastifyInstance, deps: ApiDeps, limits: ApiLimits): void {
  const registry = deps.processes ?? new ProcessRegistry();
  const target = (id: string): { vm: ProcessVm; generation: number } => {
    const vm: Vm = allocatedVm(deps, id);
    return { vm, generation: generationOf(deps, id) };
  };
  const sweep = setInterval(() => {
    registry.sweep((id, vm) => {
      const live = deps.service.get(id);
      if (live !== vm || (live.state !== 'running' && live.state !== 'paused')) return false;
      const member = deps.pools.poolOf(id)?.member(id);
      return !member || member.status === 'allocated';
    });
  }, SWEEP_INTERVAL_MS);
  sweep.unref();
  app.addHook('onClose', async () => {
    clearInterval(sweep);
    // Streams end now; the daemon's forceCloseConnections closes their sockets.
    if (!deps.processes) registry.close();
  });

  app.post<IdParams & { Body: SpawnBody }>(
    '/v1/vms/:id/processes',
    {
      schema: {
        summary: 'Start a process in the guest (argv, no shell) and stream its output with GET .../processes/{pid}/output',
        params: VmIdParams,
        body: SpawnRequest,
        response: { 201: SpawnResponse, ...OP_ERRORS, 422: ErrorBody },
      },
    },
    async (req, reply) => {
      const { argv, env, cwd } = checkExec(
        { cmd: req.body.cmd, ...(req.body.env && { env: req.body.env }), ...(req.body.cwd !== undefined && { cwd: req.body.cwd }) },
        limits,
      );
      const { vm, generation } = target(req.params.id);
      const record = await registry.spawn(vm, generation, {
        argv,
        ...(env && { env }),
        ...(cwd !== undefined && { cwd }),
        ...(req.body.pty && { pty: req.body.pty }),
      });
      reply.code(201);
      return { pid: record.pid };
    },
  );

  app.get<IdParams>(
    '/v1/vms/:id/processes',
    {
      schema: {
        summary: 'Processes started through the API in this VM (running, and the most recent exited)',
        params: VmIdParams,
        response: { 200: ProcessListResponse, ...OP_ERRORS },
      },
    },
    async (req) => {
      const { vm, generation } = target(req.params.id);
      return { processes: registry.list(vm, generation).map(wireProcess) };
    },
  );

  app.get<PidParams & { Querystring: { encoding?: 'utf8' | 'base64'; last_event_id?: string } }>(
    '/v1/vms/:id/processes/:pid/output',
    {
      schema: {
        summary: 'Output of a process as Server-Sent Events (stdout, stderr, exit, gap), resumable with Last-Event-ID; ends after the exit event',
        params: ProcessParams,
        querystring: OutputQuery,
        response: { ...OP_ERRORS },
      },
    },
    async (req, reply) => {
      const afterId = resumeId(req);
      const { vm, generation } = target(req.params.id);
      const record = registry.get(vm, generation, Number(req.params.pid));
      const release = registry.openStream(vm, generation);
      // From here on the answer is the event stream; errors can no longer become an envelope.
      reply.hijack();
      const res = reply.raw;
      startSseResponse(res);
      streamProcess(record, res, { afterId, encoding: req.query.encoding ?? 'utf8', onEnd: release });
    },
  );

  app.post<PidParams & { Body: { data: string; encoding?: 'utf8' | 'base64'; eof?: boolean } }>(
    '/v1/vms/:id/processes/:pid/stdin',
    {
      schema: {
        summary: "Write to a process's stdin (eof: close it afterwards)",
        params: ProcessParams,
        body: StdinRequest,
        response: { 200: StdinResponse, ...OP_ERRORS },
      },
    },
    async (req) => {
      const bytes = stdinBytes(req.body.data, req.body.encoding);
      const { vm, generation } = target(req.params.id);
      const pid = Number(req.params.pid);
      const r = await registry.writeStdin(vm, generation, pid, bytes, req.body.eof === true).catch((err: unknown) => stdinFull(err, pid));
      return { bytes_accepted: r.bytesAccepted };
    },
  );

  app.post<PidParams & { Body: { signal: ProcessSignal } }>(
    '/v1/vms/:id/processes/:pid/signal',
    { schema: { summary: 'Send a signal to a process', params: ProcessParams, body: SignalRequest, response: { ...OP_ERRORS } } },
    async (req, reply) => {
      const { vm, generation } = target(req.params.id);
      await registry.signal(vm, generation, Number(req.params.pid), req.body.signal);
      reply.code(204);
    },
  );

  app.post<PidParams & { Body: { cols: number; rows: number } }>(
    '/v1/vms/:id/processes/:pid/resize',
    {
      schema: {
        summary: "Resize a pty process's terminal (409 for a process without pty)",
        params: ProcessParams,
        body: ResizeRequest,
        response: { ...OP_ERRORS },
      },
    },
    async (req, reply) => {
      const { vm, generation } = target(req.params.id);
      await registry.resize(vm, generation, Number(req.params.pid), req.body.cols, req.body.rows);
      reply.code(204);
    },
  );
}
