/**
 * The Terraphim execution API routes (/health and /api/*): each one parses
 * the Rust client's request, calls pools, VMs and the executor, and answers
 * with the Rust type's JSON. Errors leave as the usual envelope
 * `{error: {code, message, details?}}` (client.rs reads a failure's body as
 * text, whatever its shape). No VM logic here.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { EXEC_DEFAULT_TIMEOUT_MS } from '../../guest/agent-protocol.js';
import { profileFor } from '../../run/index.js';
import type { ApiDeps } from '../deps.js';
import type { ApiLimits } from '../limits.js';
import { allocatedVm, viewById } from '../vm-view.js';
import { AgentVms, agentOwner, type AgentVm } from './agent-vms.js';
import { extractCodeBlocks } from './code-blocks.js';
import { checkExecute, executeIn, runLanguageOf, TERRAPHIM_LANGUAGES, type ExecVm } from './executor.js';
import { ExecutionHistory } from './history.js';
import {
  CreateSnapshotRequestSchema,
  CreateVmRequestSchema,
  ParseExecuteRequestSchema,
  TERRAPHIM_LIMITS,
  VmExecuteRequestSchema,
  type CommandHistoryEntry,
  type ParseExecuteRequest,
  type ParseExecuteResponse,
  type VmExecuteRequest,
  type VmExecuteResponse,
  type VmInstance,
  type VmPoolResponse,
} from './models.js';
import type { TerraphimOptions } from './options.js';
import { liveSnapshotsFor, NotImplementedError } from './snapshots.js';
import { resolveVmType, type PoolLike } from './vm-types.js';
import { InvalidArgumentError } from '../../errors/index.js';

const DEFAULT_DIR = '/tmp/tfc-terraphim';
type IdParams = { Params: { id: string } };

/** Registers GET /health and the /api routes. `limits` are the /v1 API's (exec timeout bound). */
export function terraphimRoutes(app: FastifyInstance, deps: ApiDeps, limits: ApiLimits): void {
  const options: TerraphimOptions = deps.terraphim ?? {};
  const dir = options.dir ?? DEFAULT_DIR;
  const aliases = options.vmTypes ?? {};
  const snapshots = options.snapshots ?? liveSnapshotsFor(deps);
  const pools = (): PoolLike[] => deps.pools.list().map((p) => ({ name: p.name, profile: p.profile }));
  const usable = (vmId: string): boolean => {
    const vm = deps.service.get(vmId);
    // Paused (by a /v1 call) is still the agent's: its next exec answers 409 INVALID_STATE naming the state rather than leaking the VM.
    if (!vm || (vm.state !== 'running' && vm.state !== 'paused')) return false;
    const member = deps.pools.poolOf(vmId)?.member(vmId);
    return !member || member.status === 'allocated';
  };
  const agents = new AgentVms(usable, TERRAPHIM_LIMITS.maxAgents, TERRAPHIM_LIMITS.maxNamedVms);
  const history = openHistory(app, deps, options);

  /** A VM allocated from the pool serving `vmType` for `owner`. */
  const allocate = async (vmType: string, owner: string) => {
    const pool = deps.pools.get(resolveVmType(vmType, pools(), aliases));
    const { member, allocationMs } = await pool.allocate({ owner });
    deps.metrics?.allocation(pool.name, allocationMs);
    return { vmId: member.vm.id, pool: pool.name };
  };

  /** vm_type for an agent's VM running `language` (see TerraphimOptions.defaultVmType). */
  const agentVmType = (language: string): string => {
    if (options.defaultVmType) return options.defaultVmType;
    const all = pools();
    const profile = profileFor(runLanguageOf(language));
    if (profile && all.some((p) => p.profile === profile || p.name === profile)) return profile;
    if (all.some((p) => p.name === 'default')) return 'default';
    // None: resolveVmType then names what exists (or says there are no pools).
    return [...all].sort((a, b) => (a.name < b.name ? -1 : 1))[0]?.name ?? 'default';
  };

  const instance = (vmId: string, agent?: AgentVm): VmInstance => {
    const view = viewById(deps, vmId);
    const named = agents.nameOf(vmId);
    // An idle pool VM is not the caller's to use: "idle", so a poller never takes it for "running".
    const status = view.pool && !view.allocated && view.state === 'running' ? 'idle' : view.state;
    let created = named?.createdAt ?? agent?.createdAt ?? view.created_at;
    if (!created) {
      try {
        created = deps.repo.get(vmId).createdAt;
      } catch {
        created = new Date().toISOString();
      }
    }
    return {
      id: view.id,
      name: named?.name ?? (agent ? `agent-${agent.agentId}-vm` : view.id),
      vm_type: named?.vmType ?? view.pool ?? view.profile,
      status,
      ip_address: view.network?.host_address ?? null,
      created_at: toRfc3339(created),
      last_activity: agent?.lastActivity ?? null,
    };
  };

  /** History writes never fail an execution that ran: the caller gets its result, the log gets the store error. */
  const record = (entry: CommandHistoryEntry) => {
    try {
      history.add(entry);
    } catch (err) {
      deps.logger?.warn({ err, vm: entry.vm_id }, `terraphim: execution ${entry.id} not recorded in the history: ${(err as Error).message}`);
    }
  };

  /** Runs one request: in `vm_id` when given, else in the agent's own VM (allocated on first use). */
  const execute = async (body: VmExecuteRequest): Promise<VmExecuteResponse> => {
    const checked = checkExecute(body, limits.maxExecTimeoutMs);
    let agent: AgentVm | undefined;
    let vm: ExecVm;
    if (body.vm_id) vm = allocatedVm(deps, body.vm_id);
    else {
      agent = await agents.acquire(body.agent_id, () => allocate(agentVmType(body.language), agentOwner(body.agent_id)));
      vm = allocatedVm(deps, agent.vmId);
    }
    // Using a VM keeps its lease alive, as a keepalive would.
    const pool = deps.pools.poolOf(vm.id);
    if (pool?.member(vm.id)?.status === 'allocated') pool.keepalive(vm.id);
    const owner = agent ?? agents.agentOf(vm.id);
    if (owner) owner.busy += 1;
    try {
      const r = await executeIn(vm, checked, dir);
      record({
        id: r.execution_id,
        vm_id: r.vm_id,
        agent_id: body.agent_id,
        command: body.code,
        language: body.language,
        snapshot_id: null,
        success: r.exit_code === 0,
        exit_code: r.exit_code,
        stdout: r.stdout,
        stderr: r.stderr,
        executed_at: r.completed_at,
        duration_ms: r.duration_ms,
      });
      return r;
    } finally {
      if (owner) {
        owner.busy -= 1;
        owner.lastActivity = new Date().toISOString();
      }
    }
  };

  app.get('/health', { schema: { summary: 'Terraphim health check (no auth): 200 when the daemon serves', security: [] } }, async () => ({
    status: 'healthy',
    service: 'terraphim-firecracker',
    version: deps.version,
    timestamp: new Date().toISOString(),
  }));

  app.post<{ Body: { vm_type: string; vm_name?: string } }>(
    '/api/vms',
    { schema: { summary: 'Terraphim: allocate a VM of vm_type (a pool, or a profile served by a pool)', body: CreateVmRequestSchema } },
    async (req, reply) => {
      const { vm_type: vmType, vm_name: vmName } = req.body;
      const { vmId } = await allocate(vmType, vmName ? `terraphim:${vmName}` : `terraphim:${vmType}`);
      agents.name(vmId, { name: vmName ?? vmId, vmType, createdAt: new Date().toISOString() });
      reply.code(201);
      return instance(vmId);
    },
  );

  app.get<IdParams>('/api/vms/:id', { schema: { summary: 'Terraphim: one VM (poll until status is running)' } }, async (req) =>
    instance(req.params.id, agents.agentOf(req.params.id)),
  );

  app.post<{ Body: VmExecuteRequest }>(
    '/api/llm/execute',
    { bodyLimit: TERRAPHIM_LIMITS.maxBodyBytes, schema: { summary: 'Terraphim: VmExecuteRequest -> VmExecuteResponse', body: VmExecuteRequestSchema } },
    async (req) => execute(req.body),
  );

  app.post<{ Body: ParseExecuteRequest }>(
    '/api/llm/parse-execute',
    {
      bodyLimit: TERRAPHIM_LIMITS.maxBodyBytes,
      schema: { summary: 'Terraphim: code blocks of an LLM answer, optionally run', body: ParseExecuteRequestSchema },
    },
    async (req): Promise<ParseExecuteResponse> => {
      const b = req.body;
      const size = Buffer.byteLength(b.llm_response);
      if (size > TERRAPHIM_LIMITS.maxLlmResponseBytes)
        throw new InvalidArgumentError(`llm_response is ${size} bytes; at most ${TERRAPHIM_LIMITS.maxLlmResponseBytes} are accepted`, {
          details: { field: 'llm_response', limit: TERRAPHIM_LIMITS.maxLlmResponseBytes },
        });
      const { blocks, dropped } = extractCodeBlocks(b.llm_response, TERRAPHIM_LIMITS.maxCodeBlocks);
      const errors: string[] = dropped ? [`${dropped} more code blocks were not parsed (at most ${TERRAPHIM_LIMITS.maxCodeBlocks})`] : [];
      const results: VmExecuteResponse[] = [];
      if (b.auto_execute) {
        const chosen = blocks.filter((c) => c.execution_confidence >= b.auto_execute_threshold);
        for (const [i, block] of chosen.entries()) {
          if (i >= TERRAPHIM_LIMITS.maxExecutedBlocks) {
            errors.push(`${chosen.length - i} more blocks above the threshold were not run (at most ${TERRAPHIM_LIMITS.maxExecutedBlocks})`);
            break;
          }
          try {
            results.push(
              await execute({ agent_id: b.agent_id, language: block.language, code: block.code, requirements: [], vm_id: null, timeout_seconds: null }),
            );
          } catch (err) {
            errors.push(`block at ${block.start_pos} (${block.language}): ${(err as Error).message}`);
          }
        }
      }
      return { code_blocks: blocks, execution_results: results, errors };
    },
  );

  app.get<{ Params: { agent_id: string } }>(
    '/api/llm/vm-pool/:agent_id',
    { schema: { summary: "Terraphim: the agent's VM and the execution settings" } },
    async (req): Promise<VmPoolResponse> => {
      const agentId = req.params.agent_id;
      const a = agents.current(agentId);
      const vm = a ? instance(a.vmId, a) : undefined;
      const poolName = a?.pool;
      const target = poolName ? deps.pools.list().find((p) => p.name === poolName)?.target : undefined;
      return {
        agent_id: agentId,
        available_vms: vm && a!.busy === 0 ? [vm] : [],
        in_use_vms: vm && a!.busy > 0 ? [vm] : [],
        pool_config: {
          enabled: true,
          api_base_url: baseUrl(req),
          vm_pool_size: target ?? 1,
          default_vm_type: options.defaultVmType ?? agentVmType('bash'),
          execution_timeout_ms: Math.min(EXEC_DEFAULT_TIMEOUT_MS, limits.maxExecTimeoutMs),
          allowed_languages: TERRAPHIM_LANGUAGES,
          auto_provision: true,
          code_validation: false,
          max_code_length: TERRAPHIM_LIMITS.maxCodeBytes,
          history: {
            enabled: true,
            snapshot_on_execution: false,
            snapshot_on_failure: false,
            auto_rollback_on_failure: false,
            max_history_entries: history.maxEntries,
            persist_history: history.persistent,
            integration_mode: 'http',
          },
        },
      };
    },
  );

  app.get<IdParams & { Querystring: { limit?: string; failures_only?: string; agent_id?: string } }>(
    '/api/vms/:id/history',
    { schema: { summary: 'Terraphim: executions recorded in a VM (FcctlBridge query_history_http)' } },
    async (req) => {
      const q = req.query;
      const limit = q.limit === undefined ? undefined : Number(q.limit);
      if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0))
        throw new InvalidArgumentError('limit must be a non-negative integer', { details: { field: 'limit' } });
      if (q.failures_only !== undefined && q.failures_only !== 'true' && q.failures_only !== 'false')
        throw new InvalidArgumentError('failures_only must be true or false', { details: { field: 'failures_only' } });
      const { entries, total } = history.query(req.params.id, {
        limit: limit === undefined ? undefined : Math.min(limit, history.maxEntries),
        failuresOnly: q.failures_only === 'true',
        ...(q.agent_id !== undefined ? { agentId: q.agent_id } : {}),
      });
      return { vm_id: req.params.id, entries, total };
    },
  );

  app.post<IdParams & { Body: { name?: string; description?: string } | undefined }>(
    '/api/vms/:id/snapshots',
    { schema: { summary: 'Terraphim: snapshot a running VM (FcctlBridge create_snapshot_http)', body: CreateSnapshotRequestSchema } },
    async (req, reply) => {
      if (!snapshots) throw notImplemented('snapshots of running VMs');
      allocatedVm(deps, req.params.id);
      const s = await snapshots.create(req.params.id);
      try {
        history.attachSnapshot(req.params.id, s.snapshotId);
      } catch (err) {
        deps.logger?.warn({ err, vm: req.params.id }, `terraphim: snapshot ${s.snapshotId} not recorded in the history: ${(err as Error).message}`);
      }
      reply.code(201);
      return { snapshot_id: s.snapshotId, id: s.snapshotId, vm_id: req.params.id, name: req.body?.name ?? null };
    },
  );

  app.post<IdParams & { Params: { snapshot_id: string } }>(
    '/api/vms/:id/rollback/:snapshot_id',
    { schema: { summary: 'Terraphim: roll a VM back to a snapshot (FcctlBridge rollback_http)' } },
    async (req) => {
      if (!snapshots) throw notImplemented('rollback');
      allocatedVm(deps, req.params.id);
      await snapshots.rollback(req.params.id, req.params.snapshot_id);
      return { vm_id: req.params.id, restored_snapshot_id: req.params.snapshot_id, rolled_back_at: new Date().toISOString(), success: true, error: null };
    },
  );
}

/**
 * The history of this app: over `options.history` (the daemon's database)
 * or a private in-memory one. A VM's rows go when the VM is destroyed,
 * except when it was paused to disk (it comes back under its id, also after
 * a restart); rows of VMs that went while no app listened (the daemon
 * stopped or crashed) go now. The subscription ends when the app closes.
 */
function openHistory(app: FastifyInstance, deps: ApiDeps, options: TerraphimOptions): ExecutionHistory {
  const memory = options.history ? undefined : ExecutionHistory.inMemory();
  const history = options.history ? new ExecutionHistory(options.history) : memory!.history;
  const pausedToDisk = (vmId: string): boolean => {
    try {
      return (deps.liveSnapshots?.persisted(vmId) ?? null) !== null;
    } catch {
      return true; // unknown: keep the rows rather than lose them
    }
  };
  const forget = (vmId: string): void => {
    if (pausedToDisk(vmId)) return;
    try {
      history.drop(vmId);
    } catch (err) {
      deps.logger?.warn({ err, vm: vmId }, `terraphim: history of ${vmId} not removed: ${(err as Error).message}`);
    }
  };
  const stored = history.vmIds();
  if (stored.length > 0) {
    // VMs of other live tfc processes sharing the data dir keep theirs.
    const live = new Set(deps.repo.ownedByLiveProcesses().map((v) => v.id));
    for (const vmId of stored) if (!live.has(vmId) && !deps.service.get(vmId)) forget(vmId);
  }
  const unsubscribe = typeof deps.service.onDestroyed === 'function' ? deps.service.onDestroyed(forget) : undefined;
  app.addHook('onClose', async () => {
    unsubscribe?.();
    memory?.close();
  });
  return history;
}

function notImplemented(what: string) {
  return new NotImplementedError(`${what} through the Terraphim API are not available in this server yet; see docs/terraphim-api.md`);
}

/** The base URL the client reached us at (for pool_config.api_base_url). */
function baseUrl(req: FastifyRequest): string {
  const host = (req.headers.host ?? 'localhost').slice(0, 256);
  return `${req.protocol}://${host}`;
}

/** SQLite's "YYYY-MM-DD HH:MM:SS" (UTC) or an ISO time, as RFC 3339 for chrono. */
function toRfc3339(t: string): string {
  const d = new Date(/^\d{4}-\d\d-\d\d \d/.test(t) ? `${t.replace(' ', 'T')}Z` : t);
  return Number.isNaN(d.getTime()) ? new Date().toISOString() : d.toISOString();
}
