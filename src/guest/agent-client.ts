/**
 * Host side of the guest agent protocol: AgentClient speaks it over one
 * connected stream socket (a QEMU virtio-serial chardev socket, Firecracker's
 * hybrid vsock socket after its CONNECT handshake, or the agent's own --unix
 * socket in tests), and connectUnix opens such a socket.
 *
 * Requests are multiplexed by id. The agent answers them in order, except
 * exec, whose reply comes when the command ends (requests sent after it are
 * answered meanwhile). Background processes (spawn) report their output and
 * exit as events, delivered to onProcessEvent listeners as they arrive.
 * This module knows nothing about VMs: whoever owns the VM owns the client
 * and closes it.
 *
 * The guest is not trusted: every reply frame is capped by what the request
 * it answers may carry, and a reply the host did not ask for (unknown id,
 * malformed frame or result, oversized frame, malformed or unknown event) is
 * a protocol violation that closes the channel and is reported once through
 * onFatal().
 */
import { randomInt } from 'node:crypto';
import net from 'node:net';
import { AgentDisconnectedError, AgentProtocolError, AgentTimeoutError, InvalidArgumentError, TfcError, VmBusyError } from '../errors/index.js';
import { FrameDecoder, encodeFrame, encodeFrameWithData } from './agent-frame.js';
import { readFileChunks, writeFileFrom } from './agent-files.js';
import { toListing, toStat, type GuestDirListing, type GuestFileStat, type ListDirOptions, type MkdirOptions, type RemoveOptions } from './agent-fs.js';
import { ProcessEventHub, checkPid, checkPtySize, checkSignal, parseEvent, spawnParams, toProcessInfos } from './agent-processes.js';
import {
  AGENT_PROTOCOL_VERSION,
  CONTROL_REPLY_MAX_BYTES,
  DEFERRED_REPLY_OPS,
  EVENT_FRAME_MAX_BYTES,
  EXEC_DEFAULT_MAX_OUTPUT_BYTES,
  EXEC_DEFAULT_TIMEOUT_MS,
  EXEC_MAX_OUTPUT_BYTES,
  EXEC_MAX_TIMEOUT_MS,
  LIST_DIR_DEFAULT_MAX_ENTRIES,
  LIST_DIR_MAX_ENTRIES,
  MAX_UNIX_MS,
  READ_FILE_DEFAULT_MAX_BYTES,
  READ_FILE_MAX_BYTES,
  agentError,
  parseResponse,
  replyFrameLimit,
  validateResult,
  wireBytes,
  type AgentOp,
  type AgentOps,
  type ShutdownMode,
} from './agent-protocol.js';
import type {
  AgentCallOptions,
  AgentClientOptions,
  AgentHello,
  AgentProcessEvent,
  AgentProcessInfo,
  ProcessSignal,
  SpawnRequest,
  ExecRequest,
  ExecResult,
  WriteFileOptions,
  ReadFileOptions,
  WriteFileFromOptions,
  ReadFileChunksOptions,
  ReadFileResult,
} from './agent-types.js';

/** Request timeout when the caller gives none. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/**
 * How much longer than an exec's own timeout the host waits for its reply:
 * the guest needs time to kill the command and send up to ~22 MiB back,
 * slowly under TCG.
 */
export const EXEC_REPLY_MARGIN_MS = 10_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const CONNECT_RETRY_MS = 10;
/**
 * Requests sent and not yet answered, including those whose callers gave up
 * (their late replies are still expected). The agent works through them
 * mostly one at a time, so more would only queue: beyond this a call fails at once with
 * VM_BUSY instead of piling up memory in the daemon (a client sending many
 * parallel execs) or ids whose replies would later look unknown.
 */
export const MAX_AGENT_REQUESTS_IN_FLIGHT = 64;
/**
 * Request bytes waiting in the socket for the agent to read them. A frame is
 * always sent when nothing is waiting (one request may be 16 MiB), but a
 * second large one is refused with VM_BUSY until the first has gone.
 */
export const MAX_AGENT_QUEUED_BYTES = 32 * 1024 * 1024;

// The public shapes live in agent-types.ts; importers keep reaching them through this module.
export type * from './agent-types.js';

interface Pending {
  op: AgentOp;
  /** Called with a result already checked by validateResult. */
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
  settle: () => void;
}

function checkUint(name: string, value: number | undefined, max: number): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0 && value <= max)) {
    throw new InvalidArgumentError(`${name} must be an integer between 0 and ${max}, got ${String(value)}`);
  }
}

function toBuffer(data: Buffer | string): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

function capped(data: Buffer, max: number): { data: Buffer; cut: boolean } {
  return data.length > max ? { data: data.subarray(0, max), cut: true } : { data, cut: false };
}

export class AgentClient {
  private readonly socket: net.Socket;
  private readonly defaultTimeoutMs: number;
  private readonly decoder = new FrameDecoder({ maxFrameBytes: () => this.nextReplyLimit(), binaryFields: true });
  private readonly pending = new Map<number, Pending>();
  /**
   * Requests in the order they were sent, including those whose caller gave
   * up: the agent answers in order (except `deferred` ones, exec, answered
   * when done), so an error it could not attribute (id 0) belongs to the
   * oldest request still unanswered that is not deferred, and a reply to an
   * id not listed here was never asked for. `limit` caps the reply's frame.
   */
  private readonly unanswered: Array<{ id: number; limit: number; deferred: boolean }> = [];
  private readonly processEvents = new ProcessEventHub();
  private processesSupported = false;
  private readonly fatalListeners = new Set<(err: TfcError) => void>();
  private fatalError: TfcError | undefined;
  /**
   * Starts at a random id: after a virtio-serial reconnect, the agent may
   * still send the reply to a request of the previous host, which must not
   * match one of ours.
   */
  private nextId = randomInt(1, 2 ** 31);
  private closedError: TfcError | undefined;
  private socketError: Error | undefined;

  /**
   * Takes ownership of a connected socket: close() or the socket closing
   * ends the client, rejecting pending calls with AgentDisconnectedError.
   */
  constructor(socket: net.Socket, options: AgentClientOptions = {}) {
    this.socket = socket;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // 'close' always follows 'error'; keep the error as the cause.
    socket.on('error', (err) => (this.socketError = err));
    socket.on('close', () => {
      const why = this.socketError ? `: ${this.socketError.message}` : '';
      this.fail(new AgentDisconnectedError(`connection to the guest agent closed${why}`, { cause: this.socketError }));
    });
    if (socket.destroyed) this.fail(new AgentDisconnectedError('the guest agent socket is already closed'));
  }

  /** True once the connection is gone (closed by either side or after a protocol error). */
  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /**
   * Registers `listener` for a protocol violation by the guest: a reply to
   * an id the host never sent (or that was already answered), a malformed,
   * empty or oversized frame, or a result of the wrong shape. The channel is
   * then closed, pending calls reject with the same AgentProtocolError
   * (code AGENT_PROTOCOL) and each listener is called once with it; a
   * listener registered after the violation is called at once (in a
   * microtask). Never called for an ordinary disconnect or close().
   */
  onFatal(listener: (err: TfcError) => void): void {
    const fatal = this.fatalError;
    if (fatal) queueMicrotask(() => listener(fatal));
    else this.fatalListeners.add(listener);
  }

  /** The protocol violation that closed the channel, if any. */
  get fatal(): TfcError | undefined {
    return this.fatalError;
  }

  /**
   * True when the agent's hello advertised the "processes" feature (spawn,
   * proc_* ops and events). False until hello() has been answered on this
   * client; VMs call hello when they boot or restore.
   */
  get supportsProcesses(): boolean {
    return this.processesSupported;
  }

  /** Agent identity and timing. Throws AgentTimeoutError, AgentDisconnectedError, AgentProtocolError. */
  async hello(options: AgentCallOptions = {}): Promise<AgentHello> {
    const r = await this.call('hello', {}, this.timeout(options), options.signal);
    const features = r.features ?? [];
    this.processesSupported = features.includes('processes');
    return {
      agentVersion: r.agent_version,
      protocol: r.protocol,
      transport: r.transport,
      pid: r.pid,
      kernelRelease: r.kernel_release,
      readyUptimeMs: r.ready_uptime_ms,
      uptimeMs: r.uptime_ms,
      features,
    };
  }

  /** Liveness check; returns the guest's uptime. Throws as hello(). */
  async ping(options: AgentCallOptions = {}): Promise<{ uptimeMs: number }> {
    const r = await this.call('ping', {}, this.timeout(options), options.signal);
    return { uptimeMs: r.uptime_ms };
  }

  /**
   * Runs a command in the guest to completion. A non-zero exit, a signal or
   * a timeout is a normal result, not an error. Throws
   * GuestCommandNotFoundError when argv[0] does not exist in the guest,
   * AgentError (agent_code EXEC_FAILED) when it cannot be started or `cwd`
   * is bad, InvalidArgumentError for bad arguments, and the transport errors
   * of hello(). The request timeout is never shorter than the command's own
   * timeout plus EXEC_REPLY_MARGIN_MS, so a command that overruns reports
   * timedOut rather than AgentTimeoutError; with timeoutMs 0 and no call
   * timeout, the call waits as long as the command runs.
   */
  async exec(request: ExecRequest, options: AgentCallOptions = {}): Promise<ExecResult> {
    const { argv } = request;
    if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string') || argv[0] === '') {
      throw new InvalidArgumentError('exec argv must be a non-empty array of strings with a non-empty argv[0]');
    }
    checkUint('exec timeoutMs', request.timeoutMs, EXEC_MAX_TIMEOUT_MS);
    checkUint('exec maxOutputBytes', request.maxOutputBytes, EXEC_MAX_OUTPUT_BYTES);
    const commandTimeoutMs = request.timeoutMs ?? EXEC_DEFAULT_TIMEOUT_MS;
    const replyTimeoutMs = commandTimeoutMs === 0 ? options.timeoutMs : Math.max(options.timeoutMs ?? 0, commandTimeoutMs + EXEC_REPLY_MARGIN_MS);
    const r = await this.call(
      'exec',
      {
        argv: [...argv],
        ...(request.env !== undefined && { env: { ...request.env } }),
        ...(request.cwd !== undefined && { cwd: request.cwd }),
        timeout_ms: commandTimeoutMs,
        ...(request.maxOutputBytes !== undefined && { max_output_bytes: request.maxOutputBytes }),
      },
      replyTimeoutMs,
      options.signal,
      request.stdin !== undefined ? { key: 'stdin_b64', data: toBuffer(request.stdin) } : undefined,
    );
    // The reply frame was already capped; a guest that ignored the limit
    // within it still gets no more than asked for through to the caller.
    const max = request.maxOutputBytes ?? EXEC_DEFAULT_MAX_OUTPUT_BYTES;
    const stdout = capped(wireBytes(r.stdout_b64), max);
    const stderr = capped(wireBytes(r.stderr_b64), max);
    return {
      exitCode: r.exit_code,
      signal: r.signal,
      stdout: stdout.data,
      stderr: stderr.data,
      stdoutTruncated: r.stdout_truncated || stdout.cut,
      stderrTruncated: r.stderr_truncated || stderr.cut,
      timedOut: r.timed_out,
      durationMs: r.duration_ms,
    };
  }

  /**
   * Writes (or appends) `data` to `path` in the guest. Throws AgentError
   * (agent_code FILE_ERROR) naming the path and the reason, and
   * InvalidArgumentError when the data does not fit one request (about
   * 12 MiB: write larger files in appended pieces).
   */
  async writeFile(path: string, data: Buffer | string, fileOptions: WriteFileOptions = {}, options: AgentCallOptions = {}): Promise<{ bytesWritten: number }> {
    checkUint('writeFile mode', fileOptions.mode, 0o7777);
    // data_b64 goes into the frame as a payload (no base64 string is made).
    const params = {
      path,
      ...(fileOptions.mode !== undefined && { mode: fileOptions.mode }),
      ...(fileOptions.append !== undefined && { append: fileOptions.append }),
      ...(fileOptions.mkdirs !== undefined && { mkdirs: fileOptions.mkdirs }),
    } as AgentOps['write_file']['params'];
    const r = await this.call('write_file', params, this.timeout(options), options.signal, {
      key: 'data_b64',
      data: toBuffer(data),
    });
    return { bytesWritten: r.bytes_written };
  }

  /**
   * Reads a file from the guest. Throws AgentError with agent_code
   * FILE_NOT_FOUND when it does not exist, FILE_ERROR otherwise.
   */
  async readFile(path: string, fileOptions: ReadFileOptions = {}, options: AgentCallOptions = {}): Promise<ReadFileResult> {
    checkUint('readFile maxBytes', fileOptions.maxBytes, READ_FILE_MAX_BYTES);
    const r = await this.call(
      'read_file',
      { path, ...(fileOptions.maxBytes !== undefined && { max_bytes: fileOptions.maxBytes }) },
      this.timeout(options),
      options.signal,
    );
    const data = capped(wireBytes(r.data_b64), fileOptions.maxBytes ?? READ_FILE_DEFAULT_MAX_BYTES);
    return { data: data.data, size: r.size, truncated: r.truncated || data.cut };
  }

  /**
   * Writes everything `source` yields to `path` in the guest in bounded
   * chunks, with constant memory; see writeFileFrom in agent-files.ts for
   * the contract. Throws as writeFile, InvalidArgumentError for bad options,
   * and whatever `source` throws.
   */
  writeFileFrom(
    path: string,
    source: AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>,
    fileOptions: WriteFileFromOptions = {},
    options: AgentCallOptions = {},
  ): Promise<{ bytes: number }> {
    return writeFileFrom(this, path, source, fileOptions, options);
  }

  /**
   * Reads `path` from the guest in chunks of at most `chunkBytes`, one
   * request in flight; see readFileChunks in agent-files.ts. Throws as
   * readFile and readFileAt.
   */
  readFileChunks(path: string, fileOptions: ReadFileChunksOptions = {}, options: AgentCallOptions = {}): AsyncGenerator<Buffer, void, undefined> {
    return readFileChunks(this, path, fileOptions, options);
  }

  /**
   * One piece of a chunked read: at most `maxBytes` (1..READ_FILE_MAX_BYTES)
   * of `path` from `offset`; `truncated` says more follows. Throws as
   * readFile; AgentProtocolError when the agent predates offsets (rebuild
   * the guest image), and as a fatal protocol violation when the guest
   * returns more than asked for or no data while claiming more follows
   * (either would corrupt the offsets or loop forever).
   */
  async readFileAt(
    path: string,
    offset: number,
    maxBytes: number,
    options: AgentCallOptions = {},
  ): Promise<{ data: Buffer; size: number; truncated: boolean }> {
    checkUint('readFileAt offset', offset, Number.MAX_SAFE_INTEGER);
    checkUint('readFileAt maxBytes', maxBytes, READ_FILE_MAX_BYTES);
    if (maxBytes === 0) throw new InvalidArgumentError('readFileAt maxBytes must be at least 1');
    const r = await this.call('read_file', { path, max_bytes: maxBytes, ...(offset > 0 && { offset }) }, this.timeout(options), options.signal);
    if (offset > 0 && r.offset !== offset) {
      throw new AgentProtocolError(
        `the guest agent ignored the read offset of ${path}; it predates chunked reads: rebuild the guest image (tfc image build --force)`,
        {
          details: { op: 'read_file', path },
        },
      );
    }
    const data = wireBytes(r.data_b64);
    if (data.length > maxBytes || (r.truncated && data.length === 0)) {
      throw this.violation(
        new AgentProtocolError(
          `agent read_file reply for ${path} at offset ${offset} carried ${data.length} bytes (asked for at most ${maxBytes}, truncated=${r.truncated})`,
          {
            details: { op: 'read_file', path, offset },
          },
        ),
      );
    }
    return { data, size: r.size, truncated: r.truncated };
  }

  /**
   * Lists the directory `path` in the guest (without "." and ".."; entries
   * are lstat'd, so a symlink is listed as one), sorted by name, at most
   * `maxEntries`. Throws AgentError with agent_code FILE_NOT_FOUND when it
   * does not exist, FILE_ERROR otherwise (e.g. not a directory); a reply
   * with more entries than asked for is a fatal protocol violation.
   */
  async listDir(path: string, listOptions: ListDirOptions = {}, options: AgentCallOptions = {}): Promise<GuestDirListing> {
    checkUint('listDir maxEntries', listOptions.maxEntries, LIST_DIR_MAX_ENTRIES);
    if (listOptions.maxEntries === 0) throw new InvalidArgumentError('listDir maxEntries must be at least 1');
    const maxEntries = listOptions.maxEntries ?? LIST_DIR_DEFAULT_MAX_ENTRIES;
    const r = await this.call('list_dir', { path, max_entries: maxEntries }, this.timeout(options), options.signal);
    if (r.entries.length > maxEntries) {
      throw this.violation(
        new AgentProtocolError(`agent list_dir reply for ${path} carried ${r.entries.length} entries (asked for at most ${maxEntries})`, {
          details: { op: 'list_dir', path },
        }),
      );
    }
    return toListing(r);
  }

  /**
   * lstat of `path` in the guest (a symlink is described, not followed; its
   * target is returned). Throws AgentError with agent_code FILE_NOT_FOUND or
   * FILE_ERROR.
   */
  async stat(path: string, options: AgentCallOptions = {}): Promise<GuestFileStat> {
    return toStat(await this.call('stat', { path }, this.timeout(options), options.signal));
  }

  /**
   * Creates the directory `path` in the guest. Returns created: false when
   * `parents` is set and it already existed. Throws AgentError with
   * agent_code FILE_EXISTS (exists without `parents`, or is not a
   * directory), FILE_NOT_FOUND (a parent is missing) or FILE_ERROR.
   */
  async mkdir(path: string, mkdirOptions: MkdirOptions = {}, options: AgentCallOptions = {}): Promise<{ created: boolean }> {
    checkUint('mkdir mode', mkdirOptions.mode, 0o7777);
    const params = {
      path,
      ...(mkdirOptions.parents !== undefined && { parents: mkdirOptions.parents }),
      ...(mkdirOptions.mode !== undefined && { mode: mkdirOptions.mode }),
    };
    const r = await this.call('mkdir', params, this.timeout(options), options.signal);
    return { created: r.created };
  }

  /**
   * Removes `path` in the guest: a file, a symlink (not its target), an
   * empty directory, or with `recursive` a directory and everything under
   * it (symlinks inside are removed, never followed). Returns how many
   * entries were removed. Throws AgentError with agent_code FILE_NOT_FOUND,
   * FILE_ERROR (e.g. a directory that is not empty without `recursive`; a
   * recursive remove that fails part way leaves the rest) or BAD_REQUEST
   * for the root directory, which is never removed.
   */
  async remove(path: string, removeOptions: RemoveOptions = {}, options: AgentCallOptions = {}): Promise<{ removed: number }> {
    const params = { path, ...(removeOptions.recursive !== undefined && { recursive: removeOptions.recursive }) };
    const r = await this.call('remove', params, this.timeout(options), options.signal);
    return { removed: r.removed };
  }

  /**
   * Sets the guest's wall clock (a restored snapshot wakes up with the time
   * it was taken). Returns the time the guest had before. Throws AgentError
   * (agent_code SYSTEM_ERROR) when the guest refuses.
   */
  async setClock(unixMs: number, options: AgentCallOptions = {}): Promise<{ previousUnixMs: number }> {
    checkUint('setClock unixMs', unixMs, MAX_UNIX_MS);
    const r = await this.call('set_clock', { unix_ms: unixMs }, this.timeout(options), options.signal);
    return { previousUnixMs: r.previous_unix_ms };
  }

  /**
   * Mixes `data` into the guest's entropy pool and credits it fully (clones
   * of one snapshot otherwise share their random state): pass bytes from a
   * real random source. Throws AgentError (agent_code SYSTEM_ERROR).
   */
  async addEntropy(data: Buffer, options: AgentCallOptions = {}): Promise<{ bytesAdded: number }> {
    const r = await this.call('add_entropy', { data_b64: data.toString('base64') }, this.timeout(options), options.signal);
    return { bytesAdded: r.bytes_added };
  }

  /**
   * Asks the guest to reboot (which ends the VM: QEMU runs with -no-reboot,
   * Firecracker exits) or power off. Resolves when the agent acknowledges,
   * or when the connection drops after the request was sent, which is the
   * expected outcome. Throws AgentDisconnectedError when already closed.
   */
  async shutdown(mode: ShutdownMode = 'reboot', options: AgentCallOptions = {}): Promise<void> {
    if (mode !== 'reboot' && mode !== 'poweroff') {
      throw new InvalidArgumentError(`shutdown mode must be "reboot" or "poweroff", got ${String(mode)}`);
    }
    if (this.closedError) throw this.closedError;
    try {
      await this.call('shutdown', { mode }, this.timeout(options), options.signal);
    } catch (err) {
      if (!(err instanceof AgentDisconnectedError)) throw err;
    }
  }

  /**
   * Starts a background process in the guest and returns its guest pid at
   * once; its output and exit arrive as events (onProcessEvent), in order,
   * every output before the exit. With `pty` it runs on a pseudo-terminal
   * (one output stream, "stdout"). Throws GuestCommandNotFoundError when
   * argv[0] does not exist, VmBusyError (agent_code TOO_MANY_PROCESSES) at
   * PROC_MAX_LIVE processes whose exit was not reported yet, AgentError
   * (EXEC_FAILED) when it cannot start, InvalidArgumentError, and the
   * transport errors of hello(). Subscribe before spawning a process whose
   * output matters: events are not kept for late listeners. A fast
   * process's output and even its exit may be delivered before this promise
   * resolves (they can arrive in the same read as the reply), so a listener
   * must keep events of pids it does not know yet while a spawn is pending.
   */
  async spawn(request: SpawnRequest, options: AgentCallOptions = {}): Promise<{ pid: number }> {
    const r = await this.call('spawn', spawnParams(request), this.timeout(options), options.signal);
    return { pid: r.pid };
  }

  /**
   * Queues `data` for the process's stdin (written as the process reads it;
   * the agent never blocks on it). With `eof`, stdin is closed after the
   * data (a pty gets its end-of-file character instead and stays open).
   * Throws VmBusyError (agent_code STDIN_FULL, nothing queued) when more
   * than PROC_STDIN_MAX_BYTES would be waiting, InvalidStateError
   * (STDIN_CLOSED) after eof or exit, ProcessNotFoundError for an unknown pid.
   */
  async writeStdin(pid: number, data: Buffer, options: AgentCallOptions & { eof?: boolean } = {}): Promise<{ bytesAccepted: number }> {
    const params = { pid: checkPid(pid), ...(options.eof && { eof: true }) };
    const r = await this.call('proc_write', params, this.timeout(options), options.signal, data.length > 0 ? { key: 'data_b64', data } : undefined);
    return { bytesAccepted: r.bytes_accepted };
  }

  /** writeStdin with no data and eof. Throws as writeStdin. */
  async closeStdin(pid: number, options: AgentCallOptions = {}): Promise<void> {
    await this.writeStdin(pid, Buffer.alloc(0), { ...options, eof: true });
  }

  /**
   * Sends `signal` to the process's whole process group. Throws
   * ProcessNotFoundError when the process is unknown or has exited,
   * InvalidArgumentError for another signal.
   */
  async signalProcess(pid: number, signal: ProcessSignal, options: AgentCallOptions = {}): Promise<void> {
    await this.call('proc_signal', { pid: checkPid(pid), signal: checkSignal(signal) }, this.timeout(options), options.signal);
  }

  /**
   * Resizes the process's terminal (its foreground group gets SIGWINCH).
   * Throws InvalidStateError (agent_code NOT_A_PTY) for a process without
   * one, ProcessNotFoundError, InvalidArgumentError outside 1..PTY_MAX_SIZE.
   */
  async resizePty(pid: number, cols: number, rows: number, options: AgentCallOptions = {}): Promise<void> {
    checkPtySize(cols, rows);
    await this.call('proc_resize', { pid: checkPid(pid), cols, rows }, this.timeout(options), options.signal);
  }

  /** The agent's processes: running ones, exited ones not yet reported, and the most recent reported ones. */
  async listProcesses(options: AgentCallOptions = {}): Promise<AgentProcessInfo[]> {
    return toProcessInfos(await this.call('proc_list', {}, this.timeout(options), options.signal));
  }

  /**
   * Subscribes to every process event of this connection, including those
   * of processes spawned by an earlier connection (e.g. before a snapshot).
   * Listeners run synchronously as frames arrive and must not throw (a
   * throw is swallowed). Returns the unsubscribe function.
   */
  onProcessEvent(listener: (event: AgentProcessEvent) => void): () => void {
    return this.processEvents.subscribe(listener);
  }

  /**
   * Closes the connection. Pending calls reject with AgentDisconnectedError.
   * Safe to call more than once. The agent itself keeps running and accepts
   * the next connection.
   */
  close(): void {
    this.fail(new AgentDisconnectedError('the agent client was closed'));
    this.socket.destroy();
  }

  private timeout(options: AgentCallOptions): number {
    return options.timeoutMs ?? this.defaultTimeoutMs;
  }

  /**
   * Sends one request and resolves with its validated result; `timeoutMs`
   * undefined means no limit. `payload` adds a binary field as base64
   * written straight into the frame (params must then leave that field out).
   */
  private call<O extends AgentOp>(
    op: O,
    params: AgentOps[O]['params'],
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
    payload?: { key: string; data: Uint8Array },
  ): Promise<AgentOps[O]['result']> {
    return new Promise<AgentOps[O]['result']>((resolve, reject) => {
      if (this.closedError) return reject(this.closedError);
      if (signal?.aborted) return reject(signal.reason);
      if (timeoutMs !== undefined && !(timeoutMs >= 0 && timeoutMs <= 2 ** 31 - 1)) {
        return reject(new InvalidArgumentError(`timeoutMs must be between 0 and ${2 ** 31 - 1}, got ${timeoutMs}`));
      }
      if (this.unanswered.length >= MAX_AGENT_REQUESTS_IN_FLIGHT) {
        return reject(
          new VmBusyError(
            `the guest agent already has ${this.unanswered.length} requests in flight (it answers one at a time); wait for some to finish, then retry`,
            { details: { op, in_flight: this.unanswered.length } },
          ),
        );
      }
      const id = this.nextId++;
      let frame: Buffer;
      try {
        const message = { v: AGENT_PROTOCOL_VERSION, id, op, ...params };
        frame = payload ? encodeFrameWithData(message, payload.key, payload.data) : encodeFrame(message);
      } catch (err) {
        return reject(err);
      }
      const queued = this.socket.writableLength;
      if (queued > 0 && queued + frame.length > MAX_AGENT_QUEUED_BYTES) {
        return reject(
          new VmBusyError(
            `${queued} bytes of earlier requests are still waiting for the guest agent; this ${frame.length}-byte ${op} would exceed ${MAX_AGENT_QUEUED_BYTES}: retry when they have gone`,
            { details: { op, queued_bytes: queued } },
          ),
        );
      }

      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              settle();
              reject(
                new AgentTimeoutError(`the guest agent did not answer ${op} within ${timeoutMs} ms`, {
                  details: { op, timeout_ms: timeoutMs },
                }),
              );
            }, timeoutMs);
      const onAbort = () => {
        settle();
        reject(signal!.reason);
      };
      // A late reply finds no pending entry and is dropped.
      const settle = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.pending.delete(id);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        op,
        settle,
        reject,
        resolve: (result) => resolve(result as AgentOps[O]['result']),
      });
      this.unanswered.push({ id, limit: replyFrameLimit(op, params as Record<string, unknown>), deferred: DEFERRED_REPLY_OPS.has(op) });
      this.socket.write(frame);
    });
  }

  /** The largest frame allowed now: an event, or the reply of the largest request still unanswered. */
  private nextReplyLimit(): number {
    let limit = Math.max(CONTROL_REPLY_MAX_BYTES, EVENT_FRAME_MAX_BYTES);
    for (const u of this.unanswered) if (u.limit > limit) limit = u.limit;
    return limit;
  }

  private onData(chunk: Buffer): void {
    if (this.closedError) return;
    try {
      this.decoder.push(chunk, (message, frameBytes) => this.dispatch(message, frameBytes));
    } catch (err) {
      // The stream can no longer be trusted: nothing after this could be matched.
      this.violation(err);
    }
  }

  private dispatch(message: Record<string, unknown>, frameBytes: number): void {
    if (this.closedError) return;
    if ('event' in message) {
      // Not fatal for a pid this connection never spawned: an earlier connection may have.
      this.processEvents.emit(parseEvent(message, frameBytes));
      return;
    }
    const response = parseResponse(message);
    let id = response.id;
    if (id === 0) {
      // The agent could not read the request's id; a deferred one was read (it is running).
      let at = this.unanswered.findIndex((u) => !u.deferred);
      if (at < 0 && this.unanswered.length > 0) at = 0;
      if (at < 0) throw new AgentProtocolError('agent sent an error reply (id 0) while no request was unanswered');
      id = this.unanswered[at]!.id;
      this.unanswered.splice(at, 1);
    } else {
      const at = this.unanswered.findIndex((u) => u.id === id);
      if (at < 0) {
        throw new AgentProtocolError(`agent sent a reply to id ${id}, which this host never sent or had already been answered`, {
          details: { id },
        });
      }
      // Replies come in order (deferred ones aside): whatever else was sent before this one will get none now.
      const keep = this.unanswered.slice(0, at).filter((u) => u.deferred);
      this.unanswered.splice(0, at + 1, ...keep);
    }
    const pending = this.pending.get(id);
    if (!pending) return; // the caller gave up: its late reply is expected and dropped
    if (response.ok) {
      // A result of the wrong shape is as untrustworthy as a bad frame.
      const result = validateResult(pending.op, response.result);
      pending.settle();
      pending.resolve(result);
    } else {
      pending.settle();
      pending.reject(agentError(pending.op, response.error));
    }
  }

  /**
   * Ends the channel for a protocol violation: fails pending calls with it,
   * destroys the socket and tells the onFatal listeners (once). Returns the
   * error so a caller can throw it.
   */
  private violation(err: unknown): TfcError {
    const error =
      err instanceof TfcError && err.code === 'AGENT_PROTOCOL'
        ? err
        : new AgentProtocolError(`guest agent channel failed: ${(err as Error).message}`, { cause: err });
    if (this.closedError) return error;
    this.fatalError = error;
    this.fail(error);
    this.socket.destroy();
    const listeners = [...this.fatalListeners];
    this.fatalListeners.clear();
    for (const l of listeners) {
      try {
        l(error);
      } catch {
        // a listener's failure must not stop the others or reach the socket handler
      }
    }
    return error;
  }

  private fail(error: TfcError): void {
    if (this.closedError) return;
    this.closedError = error;
    for (const pending of [...this.pending.values()]) {
      pending.settle();
      pending.reject(error);
    }
    this.unanswered.length = 0;
  }
}

export interface ConnectOptions extends AgentClientOptions {
  /** Give up after this long (AgentTimeoutError). Default DEFAULT_CONNECT_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Aborting rejects with `signal.reason`. */
  signal?: AbortSignal;
}

function connectOnce(path: string, signal: AbortSignal | undefined): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path });
    const onAbort = () => {
      socket.destroy();
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(err);
    });
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Connects to the agent through a Unix stream socket, retrying every 10 ms
 * while the socket does not exist yet or refuses (the VMM creates it shortly
 * after it starts). Throws AgentTimeoutError at the deadline, with the last
 * connect error as cause; AgentDisconnectedError for any other connect error;
 * `signal.reason` when aborted. Each call makes a new connection and client.
 *
 * A connection to a VMM's chardev socket succeeds before the guest agent is
 * up; the first request then simply waits for it (use hello() with a timeout).
 */
export async function connectUnix(path: string, options: ConnectOptions = {}): Promise<AgentClient> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (options.signal?.aborted) throw options.signal.reason;
    let lastError: NodeJS.ErrnoException;
    try {
      const socket = await connectOnce(path, options.signal);
      return new AgentClient(socket, options);
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      lastError = err as NodeJS.ErrnoException;
      if (!['ENOENT', 'ECONNREFUSED', 'EAGAIN'].includes(lastError.code ?? '')) {
        throw new AgentDisconnectedError(`cannot connect to the guest agent socket ${path}: ${lastError.message}`, {
          cause: err,
        });
      }
    }
    if (Date.now() >= deadline) {
      throw new AgentTimeoutError(`the guest agent socket ${path} did not accept a connection within ${timeoutMs} ms (${lastError.code}); is the VM running?`, {
        cause: lastError,
        details: { path, timeout_ms: timeoutMs },
      });
    }
    await sleep(CONNECT_RETRY_MS, options.signal);
  }
}
