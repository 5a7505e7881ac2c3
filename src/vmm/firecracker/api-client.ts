/**
 * Firecracker's REST API over its Unix socket: one typed method per operation
 * of the official spec (types from api.gen.ts), HTTP/1.1 with a keep-alive
 * connection, a timeout and an AbortSignal per request. It only moves
 * requests and answers; it knows nothing of boot order or VM state (the
 * driver's steps do), and never spawns or kills the VMM.
 */
import http from 'node:http';
import { abortableDelay } from './abortable-delay.js';
import type * as Api from './api.gen.js';
import { FIRECRACKER_OPERATIONS, type FirecrackerOperationId, type FirecrackerOperations } from './api.gen.js';
import { FirecrackerApiError, FirecrackerApiTimeoutError } from './api-errors.js';

export interface FirecrackerApiClientOptions {
  /** Firecracker's API socket (its `--api-sock`). */
  socketPath: string;
  /**
   * Default time a request may take, connection included. Default 10_000 ms:
   * configuration calls answer in microseconds, but `createSnapshot` writes
   * the guest memory; pass a larger `timeoutMs` to that call for big VMs.
   */
  timeoutMs?: number;
}

/** Per-request options. */
export interface RequestOptions {
  /** Overrides the client's `timeoutMs` for this request. */
  timeoutMs?: number;
  /** Aborting rejects the request with `signal.reason` and drops its connection. */
  signal?: AbortSignal;
}

/** Arguments of `call`: the path parameters and the body of operation K. */
export interface CallArgs<K extends FirecrackerOperationId> {
  pathParams?: FirecrackerOperations[K]['pathParams'];
  body?: FirecrackerOperations[K]['body'];
}

export const DEFAULT_API_TIMEOUT_MS = 10_000;

interface RawResponse {
  status: number;
  text: string;
}

/**
 * Client of one Firecracker process. Methods may be called concurrently;
 * they travel one at a time over a single kept-alive connection, in call
 * order, as Firecracker's API thread handles them one at a time anyway.
 * Every method throws FirecrackerApiError (Firecracker answered 4xx/5xx, or
 * could not be reached) or FirecrackerApiTimeoutError, or rejects with
 * `signal.reason` when aborted. Call `close()` when done.
 */
export class FirecrackerApiClient {
  readonly socketPath: string;
  readonly timeoutMs: number;
  private readonly agent: http.Agent;

  constructor(options: FirecrackerApiClientOptions) {
    this.socketPath = options.socketPath;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_API_TIMEOUT_MS;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  /** Drops the kept-alive connection. Idempotent; later calls open a new one. */
  close(): void {
    this.agent.destroy();
  }

  /**
   * Sends operation `operationId` with `args` and returns its success body
   * (undefined for 204). The typed methods below are shorthands for this.
   */
  async call<K extends FirecrackerOperationId>(
    operationId: K,
    args: CallArgs<K> = {},
    options: RequestOptions = {},
  ): Promise<FirecrackerOperations[K]['response']> {
    const op = FIRECRACKER_OPERATIONS[operationId];
    const params = (args.pathParams ?? {}) as Record<string, string>;
    const path = op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
      const value = params[name];
      if (value === undefined) throw new TypeError(`${operationId}: missing path parameter ${name}`);
      return encodeURIComponent(value);
    });
    const res = await this.request(op.method, path, args.body, options);
    if (res.status === 204 || res.text.length === 0) return undefined as FirecrackerOperations[K]['response'];
    try {
      return JSON.parse(res.text) as FirecrackerOperations[K]['response'];
    } catch (cause) {
      throw new FirecrackerApiError(
        `Firecracker answered ${op.method} ${path} with ${res.status} and a body that is not JSON: ${res.text.slice(0, 200)}`,
        { method: op.method, path, httpStatus: res.status, faultMessage: null, socketPath: this.socketPath },
        { cause },
      );
    }
  }

  /** Sends one request; retries once when a kept-alive connection turned out to be closed. */
  private async request(method: string, path: string, body: unknown, options: RequestOptions): Promise<RawResponse> {
    try {
      return await sendRequest(this.socketPath, method, path, body, this.agent, options.timeoutMs ?? this.timeoutMs, options.signal);
    } catch (err) {
      if (err instanceof StaleConnectionError) {
        return sendRequest(this.socketPath, method, path, body, this.agent, options.timeoutMs ?? this.timeoutMs, options.signal);
      }
      throw err;
    }
  }

  // ---- Instance, version, configuration export ----
  /** GET / */
  describeInstance(o?: RequestOptions): Promise<Api.InstanceInfo> {
    return this.call('describeInstance', {}, o);
  }
  /** GET /version */
  getVersion(o?: RequestOptions): Promise<Api.FirecrackerVersion> {
    return this.call('getFirecrackerVersion', {}, o);
  }
  /** GET /vm/config */
  getVmConfig(o?: RequestOptions): Promise<Api.FullVmConfiguration> {
    return this.call('getExportVmConfig', {}, o);
  }

  // ---- Actions ----
  /** PUT /actions with any action. */
  createSyncAction(body: Api.InstanceActionInfo, o?: RequestOptions): Promise<void> {
    return this.call('createSyncAction', { body }, o);
  }
  /** PUT /actions InstanceStart: boots the configured VM. */
  instanceStart(o?: RequestOptions): Promise<void> {
    return this.createSyncAction({ action_type: 'InstanceStart' }, o);
  }
  /** PUT /actions FlushMetrics: writes one metrics line now (post-boot only). */
  flushMetrics(o?: RequestOptions): Promise<void> {
    return this.createSyncAction({ action_type: 'FlushMetrics' }, o);
  }
  /** PUT /actions SendCtrlAltDel (x86_64): asks the guest to shut down. */
  sendCtrlAltDel(o?: RequestOptions): Promise<void> {
    return this.createSyncAction({ action_type: 'SendCtrlAltDel' }, o);
  }

  // ---- Pre-boot configuration ----
  /** GET /machine-config */
  getMachineConfig(o?: RequestOptions): Promise<Api.MachineConfiguration> {
    return this.call('getMachineConfiguration', {}, o);
  }
  /** PUT /machine-config (pre-boot) */
  putMachineConfig(body: Api.MachineConfiguration, o?: RequestOptions): Promise<void> {
    return this.call('putMachineConfiguration', { body }, o);
  }
  /** PATCH /machine-config (pre-boot); every field optional, as Firecracker parses it. */
  patchMachineConfig(body: Partial<Api.MachineConfiguration>, o?: RequestOptions): Promise<void> {
    return this.call('patchMachineConfiguration', { body: body as Api.MachineConfiguration }, o);
  }
  /** PUT /boot-source (pre-boot) */
  putBootSource(body: Api.BootSource, o?: RequestOptions): Promise<void> {
    return this.call('putGuestBootSource', { body }, o);
  }
  /** PUT /cpu-config (pre-boot) */
  putCpuConfig(body: Api.CpuConfig, o?: RequestOptions): Promise<void> {
    return this.call('putCpuConfiguration', { body }, o);
  }
  /** PUT /drives/{drive_id} (pre-boot); `driveId` must equal `body.drive_id`. */
  putDrive(driveId: string, body: Api.Drive, o?: RequestOptions): Promise<void> {
    return this.call('putGuestDriveByID', { pathParams: { drive_id: driveId }, body }, o);
  }
  /** PATCH /drives/{drive_id} (post-boot): new backing file or rate limiter. */
  patchDrive(driveId: string, body: Api.PartialDrive, o?: RequestOptions): Promise<void> {
    return this.call('patchGuestDriveByID', { pathParams: { drive_id: driveId }, body }, o);
  }
  /** PUT /network-interfaces/{iface_id} (pre-boot); `ifaceId` must equal `body.iface_id`. */
  putNetworkInterface(ifaceId: string, body: Api.NetworkInterface, o?: RequestOptions): Promise<void> {
    return this.call('putGuestNetworkInterfaceByID', { pathParams: { iface_id: ifaceId }, body }, o);
  }
  /** PATCH /network-interfaces/{iface_id} (post-boot): rate limiters. */
  patchNetworkInterface(ifaceId: string, body: Api.PartialNetworkInterface, o?: RequestOptions): Promise<void> {
    return this.call('patchGuestNetworkInterfaceByID', { pathParams: { iface_id: ifaceId }, body }, o);
  }
  /** PUT /pmem/{id} (pre-boot) */
  putPmem(id: string, body: Api.Pmem, o?: RequestOptions): Promise<void> {
    return this.call('putGuestPmemByID', { pathParams: { id }, body }, o);
  }
  /** PATCH /pmem/{id} (post-boot) */
  patchPmem(id: string, body: Api.PartialPmem, o?: RequestOptions): Promise<void> {
    return this.call('patchGuestPmemByID', { pathParams: { id }, body }, o);
  }
  /** PUT /vsock (pre-boot) */
  putVsock(body: Api.Vsock, o?: RequestOptions): Promise<void> {
    return this.call('putGuestVsock', { body }, o);
  }
  /** PUT /entropy (pre-boot) */
  putEntropy(body: Api.EntropyDevice, o?: RequestOptions): Promise<void> {
    return this.call('putEntropyDevice', { body }, o);
  }
  /** PUT /serial */
  putSerial(body: Api.SerialDevice, o?: RequestOptions): Promise<void> {
    return this.call('putSerialDevice', { body }, o);
  }
  /** PUT /logger (before boot or snapshot load) */
  putLogger(body: Api.Logger, o?: RequestOptions): Promise<void> {
    return this.call('putLogger', { body }, o);
  }
  /** PUT /metrics (before boot or snapshot load) */
  putMetrics(body: Api.Metrics, o?: RequestOptions): Promise<void> {
    return this.call('putMetrics', { body }, o);
  }

  // ---- MMDS ----
  /** PUT /mmds/config (pre-boot) */
  putMmdsConfig(body: Api.MmdsConfig, o?: RequestOptions): Promise<void> {
    return this.call('putMmdsConfig', { body }, o);
  }
  /** PUT /mmds: replaces the metadata store. */
  putMmds(body: Api.MmdsContentsObject, o?: RequestOptions): Promise<void> {
    return this.call('putMmds', { body }, o);
  }
  /** PATCH /mmds: JSON merge patch of the store. */
  patchMmds(body: Api.MmdsContentsObject, o?: RequestOptions): Promise<void> {
    return this.call('patchMmds', { body }, o);
  }
  /** GET /mmds */
  getMmds(o?: RequestOptions): Promise<{ [key: string]: unknown }> {
    return this.call('getMmds', {}, o);
  }

  // ---- Balloon ----
  /** GET /balloon */
  getBalloon(o?: RequestOptions): Promise<Api.Balloon> {
    return this.call('describeBalloonConfig', {}, o);
  }
  /** PUT /balloon (pre-boot) */
  putBalloon(body: Api.Balloon, o?: RequestOptions): Promise<void> {
    return this.call('putBalloon', { body }, o);
  }
  /** PATCH /balloon: new target size. */
  patchBalloon(body: Api.BalloonUpdate, o?: RequestOptions): Promise<void> {
    return this.call('patchBalloon', { body }, o);
  }
  /** GET /balloon/statistics */
  getBalloonStatistics(o?: RequestOptions): Promise<Api.BalloonStats> {
    return this.call('describeBalloonStats', {}, o);
  }
  /** PATCH /balloon/statistics: new polling interval. */
  patchBalloonStatistics(body: Api.BalloonStatsUpdate, o?: RequestOptions): Promise<void> {
    return this.call('patchBalloonStatsInterval', { body }, o);
  }
  /** PATCH /balloon/hinting/start */
  startBalloonHinting(body: Api.BalloonStartCmd = {}, o?: RequestOptions): Promise<void> {
    return this.call('startBalloonHinting', { body }, o);
  }
  /** GET /balloon/hinting/status */
  getBalloonHintingStatus(o?: RequestOptions): Promise<Api.BalloonHintingStatus> {
    return this.call('describeBalloonHinting', {}, o);
  }
  /** PATCH /balloon/hinting/stop */
  stopBalloonHinting(o?: RequestOptions): Promise<void> {
    return this.call('stopBalloonHinting', {}, o);
  }

  // ---- Memory hotplug ----
  /** GET /hotplug/memory */
  getMemoryHotplug(o?: RequestOptions): Promise<Api.MemoryHotplugStatus> {
    return this.call('getMemoryHotplug', {}, o);
  }
  /** PUT /hotplug/memory (pre-boot) */
  putMemoryHotplug(body: Api.MemoryHotplugConfig, o?: RequestOptions): Promise<void> {
    return this.call('putMemoryHotplug', { body }, o);
  }
  /** PATCH /hotplug/memory (post-boot) */
  patchMemoryHotplug(body: Api.MemoryHotplugSizeUpdate, o?: RequestOptions): Promise<void> {
    return this.call('patchMemoryHotplug', { body }, o);
  }

  // ---- VM state and snapshots ----
  /** PATCH /vm (post-boot) */
  patchVm(body: Api.Vm, o?: RequestOptions): Promise<void> {
    return this.call('patchVm', { body }, o);
  }
  /** PATCH /vm {"state":"Paused"} */
  pauseVm(o?: RequestOptions): Promise<void> {
    return this.patchVm({ state: 'Paused' }, o);
  }
  /** PATCH /vm {"state":"Resumed"} */
  resumeVm(o?: RequestOptions): Promise<void> {
    return this.patchVm({ state: 'Resumed' }, o);
  }
  /** PUT /snapshot/create: the VM must be Paused. */
  createSnapshot(body: Api.SnapshotCreateParams, o?: RequestOptions): Promise<void> {
    return this.call('createSnapshot', { body }, o);
  }
  /** PUT /snapshot/load: only on a fresh process (logger/metrics may be set); a failed load leaves it unusable. */
  loadSnapshot(body: Api.SnapshotLoadParams, o?: RequestOptions): Promise<void> {
    return this.call('loadSnapshot', { body }, o);
  }
}

/** Names of the client's request methods. */
export type FirecrackerClientMethod = {
  [M in keyof FirecrackerApiClient]: FirecrackerApiClient[M] extends (...args: never[]) => Promise<unknown> ? M : never;
}[keyof FirecrackerApiClient];

/**
 * Which client methods send each operation of the spec. Typed over every
 * operationId of api.gen.ts, so regenerating from a spec with a new
 * operation fails to compile until it has a method here.
 */
export const FIRECRACKER_CLIENT_METHODS: { readonly [K in FirecrackerOperationId]: readonly FirecrackerClientMethod[] } = {
  describeInstance: ['describeInstance'],
  createSyncAction: ['createSyncAction', 'instanceStart', 'flushMetrics', 'sendCtrlAltDel'],
  describeBalloonConfig: ['getBalloon'],
  putBalloon: ['putBalloon'],
  patchBalloon: ['patchBalloon'],
  startBalloonHinting: ['startBalloonHinting'],
  describeBalloonHinting: ['getBalloonHintingStatus'],
  stopBalloonHinting: ['stopBalloonHinting'],
  describeBalloonStats: ['getBalloonStatistics'],
  patchBalloonStatsInterval: ['patchBalloonStatistics'],
  putGuestBootSource: ['putBootSource'],
  putCpuConfiguration: ['putCpuConfig'],
  putGuestDriveByID: ['putDrive'],
  patchGuestDriveByID: ['patchDrive'],
  putEntropyDevice: ['putEntropy'],
  getMemoryHotplug: ['getMemoryHotplug'],
  putMemoryHotplug: ['putMemoryHotplug'],
  patchMemoryHotplug: ['patchMemoryHotplug'],
  putLogger: ['putLogger'],
  getMachineConfiguration: ['getMachineConfig'],
  putMachineConfiguration: ['putMachineConfig'],
  patchMachineConfiguration: ['patchMachineConfig'],
  putMetrics: ['putMetrics'],
  getMmds: ['getMmds'],
  putMmds: ['putMmds'],
  patchMmds: ['patchMmds'],
  putMmdsConfig: ['putMmdsConfig'],
  putGuestNetworkInterfaceByID: ['putNetworkInterface'],
  patchGuestNetworkInterfaceByID: ['patchNetworkInterface'],
  putGuestPmemByID: ['putPmem'],
  patchGuestPmemByID: ['patchPmem'],
  putSerialDevice: ['putSerial'],
  createSnapshot: ['createSnapshot'],
  loadSnapshot: ['loadSnapshot'],
  getFirecrackerVersion: ['getVersion'],
  patchVm: ['patchVm', 'pauseVm', 'resumeVm'],
  getExportVmConfig: ['getVmConfig'],
  putGuestVsock: ['putVsock'],
};

export interface WaitForSocketOptions {
  /** Give up after this long. Default 5_000 ms (Firecracker serves its API within milliseconds of starting). */
  timeoutMs?: number;
  /** Abort to stop waiting, e.g. when the VMM process exits; rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Pause between attempts while the socket is missing or refuses. Default 5 ms. */
  intervalMs?: number;
}

/**
 * Polls the API socket at `socketPath` until `GET /` answers, and returns
 * that answer. Throws FirecrackerApiTimeoutError when `timeoutMs` passes
 * first, FirecrackerApiError when something answers but not with 200, or
 * rejects with `signal.reason` when aborted. Safe to call any number of times.
 */
export async function waitForSocket(socketPath: string, options: WaitForSocketOptions = {}): Promise<Api.InstanceInfo> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const intervalMs = options.intervalMs ?? 5;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    options.signal?.throwIfAborted();
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    try {
      const res = await sendRequest(socketPath, 'GET', '/', undefined, false, Math.min(remaining, 1_000), options.signal);
      if (res.status !== 200) throw apiError('GET', '/', res, socketPath);
      return JSON.parse(res.text) as Api.InstanceInfo;
    } catch (err) {
      if (!(err instanceof FirecrackerApiError && err.httpStatus === null) && !(err instanceof FirecrackerApiTimeoutError)) throw err;
      last = err;
    }
    await abortableDelay(Math.min(intervalMs, Math.max(0, deadline - Date.now())), options.signal);
  }
  throw new FirecrackerApiTimeoutError(
    `Firecracker API socket ${socketPath} did not answer GET / within ${timeoutMs} ms; check that the VMM started (its stderr or log file says why not)`,
    { method: 'GET', path: '/', timeoutMs, socketPath },
    { cause: last },
  );
}

/** A kept-alive connection was closed by the server before our request reached it: safe to resend. */
class StaleConnectionError extends Error {}

function faultOf(text: string): string {
  try {
    const parsed = JSON.parse(text) as { fault_message?: unknown };
    if (typeof parsed.fault_message === 'string') return parsed.fault_message;
  } catch {
    // not JSON: quote the body as it came
  }
  return text.trim();
}

function apiError(method: string, path: string, res: RawResponse, socketPath: string): FirecrackerApiError {
  const fault = faultOf(res.text);
  return new FirecrackerApiError(`Firecracker refused ${method} ${path} (${res.status}): ${fault || '(no fault message)'}`, {
    method,
    path,
    httpStatus: res.status,
    faultMessage: fault,
    socketPath,
  });
}

/** One HTTP exchange on the Unix socket; resolves with any 2xx, throws the typed errors otherwise. */
function sendRequest(
  socketPath: string,
  method: string,
  path: string,
  body: unknown,
  agent: http.Agent | false,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: http.OutgoingHttpHeaders = { Accept: 'application/json' };
    if (payload) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = payload.length;
    }
    let settled = false;
    let gotResponse = false;
    const finish = (err: unknown, value?: RawResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) resolve(value!);
      else reject(err);
    };
    const req = http.request({ socketPath, path, method, headers, agent });
    const onAbort = () => {
      finish(signal!.reason);
      req.destroy();
    };
    const timer = setTimeout(() => {
      finish(
        new FirecrackerApiTimeoutError(`Firecracker did not answer ${method} ${path} within ${timeoutMs} ms (socket ${socketPath})`, {
          method,
          path,
          timeoutMs,
          socketPath,
        }),
      );
      req.destroy();
    }, timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('response', (res) => {
      gotResponse = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => finish(unreachable(method, path, socketPath, err)));
      res.on('end', () => {
        const raw = { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') };
        finish(raw.status >= 200 && raw.status < 300 ? undefined : apiError(method, path, raw, socketPath), raw);
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (req.reusedSocket && !gotResponse && err.code === 'ECONNRESET') finish(new StaleConnectionError(err.message));
      else finish(unreachable(method, path, socketPath, err));
    });
    req.end(payload);
  });
}

function unreachable(method: string, path: string, socketPath: string, err: NodeJS.ErrnoException): FirecrackerApiError {
  const why = err.code ?? err.message;
  return new FirecrackerApiError(
    `cannot reach Firecracker API at ${socketPath} for ${method} ${path} (${why}); is the VMM running with --api-sock ${socketPath}?`,
    { method, path, httpStatus: null, faultMessage: null, socketPath },
    { cause: err },
  );
}
