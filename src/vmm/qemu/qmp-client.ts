import { connect, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { QmpError, QmpTimeoutError } from '../../errors/index.js';
import { QmpLineDecoder, encodeQmpCommand, type QmpMessage } from './qmp-framing.js';

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  command: string;
}

type EventListener = (event: QmpEvent) => void;

/**
 * A QMP client on a Unix socket: greeting, capability negotiation, commands
 * matched by id, asynchronous events, per-command timeouts.
 */
export class QmpClient {
  private readonly decoder = new QmpLineDecoder();
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Set<EventListener>();
  private nextId = 1;
  private closedError: Error | null = null;
  private greetingResolve!: (g: QmpMessage) => void;
  private greetingReject!: (e: Error) => void;
  /** Resolves with QEMU's greeting ({QMP: {version, capabilities}}). */
  readonly greeting: Promise<QmpMessage>;

  private constructor(private readonly socket: Socket) {
    this.greeting = new Promise((res, rej) => {
      this.greetingResolve = res;
      this.greetingReject = rej;
    });
    this.greeting.catch(() => undefined);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new QmpError(`QMP socket error: ${err.message}`, { cause: err })));
    socket.on('close', () => this.fail(new QmpError('QMP connection closed (QEMU exited?)')));
  }

  /**
   * Connects to QEMU's QMP socket, retrying while it does not exist yet,
   * waits for the greeting and negotiates capabilities. Throws
   * QmpTimeoutError when the deadline passes first (e.g. QEMU never started).
   */
  static async connect(path: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<QmpClient> {
    const deadline = Date.now() + options.timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      options.signal?.throwIfAborted();
      try {
        const socket = await openSocket(path);
        const client = new QmpClient(socket);
        try {
          const remaining = Math.max(1, deadline - Date.now());
          await withTimeout(client.greeting, remaining, `QMP greeting on ${path}`);
          await client.execute('qmp_capabilities', undefined, { timeoutMs: Math.max(1, deadline - Date.now()) });
          return client;
        } catch (err) {
          client.close();
          throw err;
        }
      } catch (err) {
        lastError = err;
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw err;
        await delay(5);
      }
    }
    throw new QmpTimeoutError(`QMP socket ${path} did not answer within ${options.timeoutMs} ms`, { cause: lastError });
  }

  /**
   * Runs one command; resolves with its `return` value. Throws QmpError with
   * QEMU's error class and description, or QmpTimeoutError. Safe to call
   * concurrently.
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options: { timeoutMs?: number } = {}): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = `tfc-${this.nextId++}`;
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpTimeoutError(`QMP command ${command} got no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, command });
      this.socket.write(encodeQmpCommand(command, id, args));
    });
  }

  /** Subscribes to events; returns the unsubscribe function. */
  onEvent(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Waits for the next event named `name` (optionally matching `predicate`).
   * Throws QmpTimeoutError after `timeoutMs`, QmpError if the connection closes.
   */
  waitForEvent(name: string, timeoutMs: number, predicate: (e: QmpEvent) => boolean = () => true): Promise<QmpEvent> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        this.socket.off('close', onClose);
        reject(new QmpTimeoutError(`no QMP event ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      const onClose = () => {
        clearTimeout(timer);
        off();
        reject(this.closedError ?? new QmpError('QMP connection closed'));
      };
      const off = this.onEvent((e) => {
        if (e.event !== name || !predicate(e)) return;
        clearTimeout(timer);
        off();
        this.socket.off('close', onClose);
        resolve(e);
      });
      this.socket.once('close', onClose);
    });
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  /** Closes the connection; pending commands fail. Idempotent. */
  close(): void {
    this.socket.destroy();
    this.fail(new QmpError('QMP client closed'));
  }

  private onData(chunk: Buffer): void {
    let messages: QmpMessage[];
    try {
      messages = this.decoder.push(chunk);
    } catch (err) {
      this.fail(new QmpError(`malformed QMP message: ${(err as Error).message}`));
      this.socket.destroy();
      return;
    }
    for (const message of messages) this.dispatch(message);
  }

  private dispatch(message: QmpMessage): void {
    if ('QMP' in message) {
      this.greetingResolve(message);
      return;
    }
    if (typeof message.event === 'string') {
      const event = message as unknown as QmpEvent;
      for (const listener of [...this.listeners]) listener(event);
      return;
    }
    const id = typeof message.id === 'string' ? message.id : undefined;
    const pending = id === undefined ? undefined : this.pending.get(id);
    if (!pending) return; // reply to a command that already timed out
    this.pending.delete(id!);
    clearTimeout(pending.timer);
    if ('error' in message) {
      const e = message.error as { class?: string; desc?: string };
      pending.reject(new QmpError(`QMP ${pending.command} failed: ${e.class ?? 'Error'}: ${e.desc ?? 'unknown'}`, { details: { qmp_class: e.class } }));
    } else {
      pending.resolve(message.return);
    }
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    this.greetingReject(err);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}

function openSocket(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new QmpTimeoutError(`${what} not received within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
