/**
 * TfcClient: every REST route of the daemon as a typed method (docs/client.md).
 * Methods only build paths and bodies; the request core (http.ts) owns
 * auth, timeouts, retries and error typing.
 */
import { Readable } from 'node:stream';
import { errorFor } from './errors.js';
import { HttpCore, type TfcClientOptions } from './http.js';
import { processOutput, type OutputOptions } from './process-output.js';
import { followEvents, type EventsOptions, type EventStreamItem } from './events.js';
import type {
  AllocateRequest,
  Allocation,
  CreateSnapshotRequest,
  ExecRequest,
  ExecResult,
  FileList,
  FileStat,
  ForkRequest,
  ResumeRequest,
  ForkResult,
  Health,
  MkdirRequest,
  MkdirResult,
  PausedToDisk,
  PauseRequest,
  Pool,
  ProcessEvent,
  ProcessInfo,
  ProcessSignal,
  PtySize,
  RemoveResult,
  RollbackRequest,
  RunRequest,
  RunResult,
  SnapshotCreated,
  SnapshotInfo,
  SnapshotList,
  SnapshotListQuery,
  SpawnRequest,
  SpawnResult,
  StdinResult,
  Vm,
} from './types.js';

/** What an upload reads from: bytes, text, a web stream, a Node stream or any async iterable of chunks. */
export type UploadSource = Uint8Array | string | ReadableStream<Uint8Array> | Readable | AsyncIterable<Uint8Array>;

/** Default bound of `downloadBuffer` (64 MiB); larger files belong in `download` (a stream). */
export const DEFAULT_DOWNLOAD_BUFFER_BYTES = 64 * 1024 * 1024;

/** Time a one-shot command gets when its request names none (the daemon's default). */
const DEFAULT_EXEC_TIMEOUT_MS = 30_000;

const vmPath = (id: string, rest = '') => `/v1/vms/${encodeURIComponent(id)}${rest}`;
const procPath = (id: string, pid: number, rest = '') => vmPath(id, `/processes/${pid}${rest}`);

export class TfcClient {
  /** The request core (shared by every method; the CLI uses it for its few raw calls). */
  readonly http: HttpCore;

  /** No I/O happens here. Options: see TfcClientOptions (url, token, fetch, timeoutMs, retry). */
  constructor(options: TfcClientOptions) {
    this.http = new HttpCore(options);
  }

  get url(): string {
    return this.http.baseUrl;
  }

  /** GET /v1/health (no token needed). Retried like every GET. */
  health(): Promise<Health> {
    return this.http.json('GET', '/v1/health', { retry: true });
  }

  // Pools ------------------------------------------------------------------

  async listPools(): Promise<Pool[]> {
    return (await this.http.json<{ pools: Pool[] }>('GET', '/v1/pools', { retry: true })).pools;
  }

  /** Throws POOL_NOT_FOUND. */
  getPool(name: string): Promise<Pool> {
    return this.http.json('GET', `/v1/pools/${encodeURIComponent(name)}`, { retry: true });
  }

  /**
   * POST /v1/pools/{name}/allocate: a ready VM with a lease. POOL_EXHAUSTED
   * is retried after the delay the daemon asks for (the retry policy bounds
   * attempts and total time): a refused allocation allocated nothing.
   */
  allocate(pool: string, request: AllocateRequest = {}): Promise<Allocation> {
    return this.http.json('POST', `/v1/pools/${encodeURIComponent(pool)}/allocate`, {
      json: request,
      retry: true,
      extraTimeoutMs: request.timeout_ms ?? DEFAULT_EXEC_TIMEOUT_MS,
    });
  }

  // VMs --------------------------------------------------------------------

  async listVms(): Promise<Vm[]> {
    return (await this.http.json<{ vms: Vm[] }>('GET', '/v1/vms', { retry: true })).vms;
  }

  /** Throws VM_NOT_FOUND. */
  getVm(id: string): Promise<Vm> {
    return this.http.json('GET', vmPath(id), { retry: true });
  }

  /** DELETE /v1/vms/{id}: fresh pools destroy the VM, reuse pools keep it for its owner. Not retried. */
  async release(id: string): Promise<void> {
    await this.http.json('DELETE', vmPath(id));
  }

  /** POST /v1/vms/{id}/keepalive: the lease runs `ttl_ms` from now (default: the allocation's TTL). */
  keepalive(id: string, options: { ttl_ms?: number } = {}): Promise<Vm> {
    return this.http.json('POST', vmPath(id, '/keepalive'), { json: options });
  }

  /** Pauses a VM in memory; `{persist: true}` (daemons with live snapshots) writes it to disk and frees its memory. */
  pause(id: string): Promise<Vm>;
  pause(id: string, options: { persist: true }): Promise<PausedToDisk>;
  pause(id: string, options: PauseRequest): Promise<Vm | PausedToDisk>;
  pause(id: string, options: PauseRequest = {}): Promise<Vm | PausedToDisk> {
    return this.http.json(
      'POST',
      vmPath(id, '/pause'),
      options.persist ? { json: { persist: true } satisfies PauseRequest, extraTimeoutMs: DEFAULT_EXEC_TIMEOUT_MS } : {},
    );
  }

  /** POST /v1/vms/{id}/resume: a VM paused in memory, or one paused to disk (it then runs under a lease of `ttl_ms`, default 10 min). */
  resume(id: string, options: ResumeRequest = {}): Promise<Vm> {
    return this.http.json('POST', vmPath(id, '/resume'), options && Object.keys(options).length ? { json: options } : {});
  }

  /** POST /v1/vms/{id}/exec: runs `cmd` to completion. Never retried (it may have run). */
  exec(id: string, request: ExecRequest, options: { signal?: AbortSignal } = {}): Promise<ExecResult> {
    return this.http.json('POST', vmPath(id, '/exec'), {
      json: request,
      extraTimeoutMs: request.timeout_ms || DEFAULT_EXEC_TIMEOUT_MS,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  // Processes --------------------------------------------------------------

  /** Starts a process; follow it with `output`. Never retried. */
  spawn(id: string, request: SpawnRequest): Promise<SpawnResult> {
    return this.http.json('POST', vmPath(id, '/processes'), { json: request });
  }

  async listProcesses(id: string): Promise<ProcessInfo[]> {
    return (await this.http.json<{ processes: ProcessInfo[] }>('GET', vmPath(id, '/processes'), { retry: true })).processes;
  }

  /**
   * Writes bytes (at most 1 MiB) to the process's stdin; `eof` closes it
   * after. VM_BUSY (the guest has not read what was sent) is retried: a
   * refused write wrote nothing.
   */
  writeStdin(id: string, pid: number, data: Uint8Array | string, options: { eof?: boolean } = {}): Promise<StdinResult> {
    const json =
      typeof data === 'string'
        ? { data, encoding: 'utf8' as const, ...(options.eof ? { eof: true } : {}) }
        : {
            data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
            encoding: 'base64' as const,
            ...(options.eof ? { eof: true } : {}),
          };
    return this.http.json('POST', procPath(id, pid, '/stdin'), { json, retry: true });
  }

  async signal(id: string, pid: number, signal: ProcessSignal): Promise<void> {
    await this.http.json('POST', procPath(id, pid, '/signal'), { json: { signal } });
  }

  /** Resizes a pty process's terminal (INVALID_STATE for a process without pty). */
  async resize(id: string, pid: number, size: PtySize): Promise<void> {
    await this.http.json('POST', procPath(id, pid, '/resize'), { json: size });
  }

  /** The process's output events until `exit`, resumed with Last-Event-ID across dropped connections (process-output.ts). */
  output(id: string, pid: number, options: OutputOptions = {}): AsyncGenerator<ProcessEvent> {
    return processOutput(this.http, id, pid, options);
  }

  // Events -----------------------------------------------------------------

  /**
   * GET /v1/events: the daemon's events (VM state changes, allocations,
   * releases, pool counts, alerts) as they happen, resumed with
   * Last-Event-ID across dropped connections (events.ts). Never ends on its
   * own: break out of the loop or abort `signal`.
   */
  events(options: EventsOptions = {}): AsyncGenerator<EventStreamItem> {
    return followEvents(this.http, options);
  }

  // Files ------------------------------------------------------------------

  /**
   * PUT /v1/vms/{id}/files: writes `source` to `path` (parents created),
   * streamed. `mode` is octal text ("0644"). Not retried (a stream cannot
   * be replayed).
   */
  async upload(id: string, path: string, source: UploadSource, options: { mode?: string; signal?: AbortSignal } = {}): Promise<void> {
    const body: BodyInit =
      typeof source === 'string'
        ? source
        : source instanceof Uint8Array
          ? (source as Uint8Array<ArrayBuffer>)
          : source instanceof ReadableStream
            ? source
            : (Readable.toWeb(source instanceof Readable ? source : Readable.from(source)) as ReadableStream<Uint8Array>);
    await this.http.json('PUT', vmPath(id, '/files'), {
      body,
      query: { path, mode: options.mode },
      extraTimeoutMs: null,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /**
   * GET /v1/vms/{id}/files: the file as a stream. A failure in the guest
   * after the first bytes errors the stream (never a short file that
   * looks whole). Errors before the first byte are thrown typed.
   */
  async download(id: string, path: string, options: { signal?: AbortSignal } = {}): Promise<ReadableStream<Uint8Array>> {
    const res = await this.http.send('GET', vmPath(id, '/files'), {
      query: { path },
      extraTimeoutMs: null,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (!res.body) return new ReadableStream({ start: (c) => c.close() });
    return res.body;
  }

  /** `download` into one Buffer of at most `maxBytes` (default 64 MiB; beyond: PAYLOAD_TOO_LARGE). */
  async downloadBuffer(id: string, path: string, options: { maxBytes?: number; signal?: AbortSignal } = {}): Promise<Buffer> {
    const maxBytes = options.maxBytes ?? DEFAULT_DOWNLOAD_BUFFER_BYTES;
    const stream = await this.download(id, path, options.signal ? { signal: options.signal } : {});
    const chunks: Buffer[] = [];
    let total = 0;
    const reader = stream.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read().catch((err: unknown) => {
          throw errorFor('DAEMON_UNAVAILABLE', `the download of ${path} was cut after ${total} bytes`, { cause: err });
        });
        if (done) break;
        total += value.byteLength;
        if (total > maxBytes)
          throw errorFor('PAYLOAD_TOO_LARGE', `${path} is larger than ${maxBytes} bytes; use download() to stream it`, { details: { limit_bytes: maxBytes } });
        chunks.push(Buffer.from(value));
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
    return Buffer.concat(chunks);
  }

  /** GET .../files/list: entries sorted by name (at most `max_entries`, default 10000). */
  listFiles(id: string, path: string, options: { max_entries?: number } = {}): Promise<FileList> {
    return this.http.json('GET', vmPath(id, '/files/list'), { query: { path, max_entries: options.max_entries }, retry: true });
  }

  stat(id: string, path: string): Promise<FileStat> {
    return this.http.json('GET', vmPath(id, '/files/stat'), { query: { path }, retry: true });
  }

  mkdir(id: string, request: MkdirRequest): Promise<MkdirResult> {
    return this.http.json('POST', vmPath(id, '/files/mkdir'), { json: request });
  }

  remove(id: string, path: string, options: { recursive?: boolean } = {}): Promise<RemoveResult> {
    return this.http.json('DELETE', vmPath(id, '/files'), { query: { path, ...(options.recursive ? { recursive: 'true' } : {}) } });
  }

  // Run --------------------------------------------------------------------

  /** POST /v1/run: a program in a fresh or pooled VM, destroyed after. Never retried (it may have run). */
  run(request: RunRequest, options: { signal?: AbortSignal } = {}): Promise<RunResult> {
    return this.http.json('POST', '/v1/run', {
      json: request,
      extraTimeoutMs: request.timeout_ms || DEFAULT_EXEC_TIMEOUT_MS,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  // Snapshots (daemons with live snapshots, issue 10; older ones answer NOT_FOUND) --

  /** POST /v1/vms/{id}/snapshots: snapshot a running VM (it keeps running). */
  snapshot(id: string, request: CreateSnapshotRequest = {}): Promise<SnapshotCreated> {
    return this.http.json('POST', vmPath(id, '/snapshots'), { json: request, extraTimeoutMs: DEFAULT_EXEC_TIMEOUT_MS });
  }

  /** GET /v1/snapshots: newest first, optionally of one VM. */
  async listSnapshots(options: SnapshotListQuery = {}): Promise<SnapshotInfo[]> {
    return (await this.http.json<SnapshotList>('GET', '/v1/snapshots', { query: { vm_id: options.vm_id }, retry: true })).snapshots;
  }

  getSnapshot(snapshotId: string): Promise<SnapshotInfo> {
    return this.http.json('GET', `/v1/snapshots/${encodeURIComponent(snapshotId)}`, { retry: true });
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    await this.http.json('DELETE', `/v1/snapshots/${encodeURIComponent(snapshotId)}`);
  }

  /** POST /v1/vms/{id}/rollback: the VM returns to the snapshot's state (same id and network). */
  rollback(id: string, snapshotId: string): Promise<Vm> {
    return this.http.json('POST', vmPath(id, '/rollback'), {
      json: { snapshot_id: snapshotId } satisfies RollbackRequest,
      extraTimeoutMs: DEFAULT_EXEC_TIMEOUT_MS,
    });
  }

  /** POST /v1/snapshots/{id}/fork: `count` new VMs from the snapshot. Never retried. */
  fork(snapshotId: string, count: number, options: Omit<ForkRequest, 'count'> = {}): Promise<ForkResult> {
    return this.http.json('POST', `/v1/snapshots/${encodeURIComponent(snapshotId)}/fork`, {
      json: { count, ...options } satisfies ForkRequest,
      extraTimeoutMs: DEFAULT_EXEC_TIMEOUT_MS * Math.max(1, count),
    });
  }
}
