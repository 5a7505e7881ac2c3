/**
 * Host side of Firecracker's hybrid vsock (docs/vsock.md in Firecracker):
 * connect to the device's Unix socket (`uds_path`), write `CONNECT <port>\n`,
 * read `OK <host_port>\n`; from then on the socket is a byte stream to the
 * guest's AF_VSOCK listener on `port`. Used for the guest agent, so the same
 * agent protocol as under QEMU runs unchanged over it.
 *
 * While the guest is not listening yet (kernel still booting, vsock module
 * not loaded, agent not started), Firecracker either closes the connection
 * (the guest answered with a reset) or answers nothing (the guest driver
 * has not picked up the request; Firecracker drops it after about 2 s). Both
 * are retried until the caller's deadline.
 */
import net from 'node:net';
import { abortableDelay } from './abortable-delay.js';
import { AgentClient, type AgentClientOptions } from '../../guest/agent-client.js';
import { AgentDisconnectedError, AgentProtocolError, AgentTimeoutError } from '../../errors/index.js';

/** Longest acceptable answer line (`OK 4294967295\n` is 14 bytes). */
const MAX_ANSWER_BYTES = 64;

export interface HybridVsockOptions {
  /** Give up after this long, all attempts included (AgentTimeoutError). */
  timeoutMs: number;
  /** Aborting rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** How long one attempt waits for `OK` before retrying. Default 2000 ms (Firecracker's own connect timeout). */
  attemptTimeoutMs?: number;
  /** Pause between attempts. Default 10 ms. */
  retryDelayMs?: number;
}

export interface HybridVsockConnection {
  /** Connected, paused, positioned right after the `OK` line (bytes after it were put back). */
  socket: net.Socket;
  /** The host-side port Firecracker assigned (from `OK <n>`). */
  hostPort: number;
  /** Attempts made, this one included. */
  attempts: number;
}

type Attempt = { ok: true; socket: net.Socket; hostPort: number } | { ok: false; reason: string };

class FatalVsockError extends Error {
  constructor(readonly error: Error) {
    super(error.message);
  }
}

/** Errors of `connect()` that mean "not there yet": the socket file is missing or nobody listens. */
const RETRYABLE_CONNECT = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN', 'ECONNRESET']);

function attempt(udsPath: string, port: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: udsPath });
    let buf = Buffer.alloc(0);
    let settled = false;
    const done = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('connect', onConnect);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      fn();
    };
    const retry = (reason: string) =>
      done(() => {
        socket.destroy();
        resolve({ ok: false, reason });
      });
    const onAbort = () =>
      done(() => {
        socket.destroy();
        reject(signal!.reason);
      });
    const onConnect = () => socket.write(`CONNECT ${port}\n`);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > MAX_ANSWER_BYTES) fatal(`Firecracker answered CONNECT ${port} with ${buf.length} bytes and no line end`);
        return;
      }
      const line = buf.subarray(0, nl).toString('latin1');
      const m = /^OK (\d{1,10})$/.exec(line);
      if (!m) return fatal(`Firecracker answered CONNECT ${port} with ${JSON.stringify(line)} instead of "OK <port>"`);
      const rest = buf.subarray(nl + 1);
      done(() => {
        // Stop the flow before putting back what already belongs to the agent protocol.
        socket.pause();
        if (rest.length > 0) socket.unshift(rest);
        resolve({ ok: true, socket, hostPort: Number(m[1]) });
      });
    };
    const fatal = (message: string) =>
      done(() => {
        socket.destroy();
        reject(new FatalVsockError(new AgentProtocolError(`${message} (vsock socket ${udsPath})`)));
      });
    const onError = (err: NodeJS.ErrnoException) => {
      if (RETRYABLE_CONNECT.has(err.code ?? '')) return retry(`${err.code} on ${udsPath}`);
      done(() => {
        socket.destroy();
        reject(new FatalVsockError(new AgentDisconnectedError(`cannot connect to the vsock socket ${udsPath}: ${err.message}`, { cause: err })));
      });
    };
    // The guest has no listener on the port (yet), or the VM is being torn down.
    const onClose = () => retry(`Firecracker closed the connection without answering CONNECT ${port} (nothing listening on the guest port yet)`);
    const timer = setTimeout(() => retry(`no answer to CONNECT ${port} within ${timeoutMs} ms`), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('connect', onConnect);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}

/**
 * Opens a host-initiated connection to guest vsock `port` through the hybrid
 * vsock socket `udsPath`, retrying while the guest is not listening. Throws
 * AgentTimeoutError at the deadline (with the last reason), AgentProtocolError
 * when Firecracker answers something other than `OK <n>`,
 * AgentDisconnectedError for connect errors other than "not there yet", or
 * `signal.reason` when aborted. The returned socket is paused: the new owner
 * attaches its listeners, then calls `resume()`.
 */
export async function connectHybridVsock(udsPath: string, port: number, options: HybridVsockOptions): Promise<HybridVsockConnection> {
  const deadline = Date.now() + options.timeoutMs;
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 2_000;
  let attempts = 0;
  let lastReason = 'no attempt made';
  for (;;) {
    options.signal?.throwIfAborted();
    const left = deadline - Date.now();
    if (left <= 0) break;
    attempts++;
    let result: Attempt;
    try {
      result = await attempt(udsPath, port, Math.min(attemptTimeoutMs, left), options.signal);
    } catch (err) {
      throw err instanceof FatalVsockError ? err.error : err;
    }
    if (result.ok) return { socket: result.socket, hostPort: result.hostPort, attempts };
    lastReason = result.reason;
    const pause = Math.min(options.retryDelayMs ?? 10, deadline - Date.now());
    if (pause > 0) await abortableDelay(pause, options.signal);
  }
  throw new AgentTimeoutError(
    `the guest did not accept a vsock connection to port ${port} within ${options.timeoutMs} ms (${attempts} attempts; last: ${lastReason}); is the guest agent running?`,
    { details: { uds_path: udsPath, port, attempts, timeout_ms: options.timeoutMs } },
  );
}

/**
 * Connects to the guest agent over hybrid vsock and wraps the connection in
 * an AgentClient (which owns it from then on). Throws as connectHybridVsock.
 * Each call makes a new connection; the agent serves one at a time.
 */
export async function connectVsockAgent(udsPath: string, port: number, options: HybridVsockOptions & AgentClientOptions): Promise<AgentClient> {
  const { socket } = await connectHybridVsock(udsPath, port, options);
  const client = new AgentClient(socket, options.defaultTimeoutMs === undefined ? {} : { defaultTimeoutMs: options.defaultTimeoutMs });
  // Paused explicitly above, so adding the client's 'data' listener did not restart the flow.
  socket.resume();
  return client;
}
