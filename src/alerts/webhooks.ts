import { createHmac, randomUUID } from 'node:crypto';
import type { BusEvent } from '../events/index.js';
import type { DeliveryRecord } from '../store/index.js';

/** One `[[alerts.webhooks]]` with its secret resolved. */
export interface WebhookTarget {
  url: string;
  /** HMAC-SHA256 key; null = unsigned (no X-Tfc-Signature-256 header). */
  secret: string | null;
  /** Event types delivered. */
  events: readonly string[];
  timeoutMs: number;
  maxAttempts: number;
  queueSize: number;
}

/** Where finished deliveries are written (the store's AlertRepository). */
export interface DeliveryLog {
  recordDelivery(d: DeliveryRecord): void;
}

export interface WebhookStatus {
  url: string;
  events: string[];
  queued: number;
  /** Events dropped because the queue was full (oldest first) or the daemon stopped. */
  dropped: number;
  delivered: number;
  failed: number;
}

export interface DispatcherOptions {
  log?: DeliveryLog;
  /** Default: Node's fetch. */
  fetch?: typeof fetch;
  /** Jitter source in [0, 1); default Math.random. */
  random?: () => number;
  /** Waits between attempts; default a timer that an abort ends early. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** First retry delay before jitter; default 500 ms, doubled per attempt. */
  baseDelayMs?: number;
  /** Longest delay between attempts; default 30 s. */
  maxDelayMs?: number;
  onError?: (message: string) => void;
}

/** The webhook as logs and the API show it: without credentials or query string (either may hold a token). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '(invalid URL)';
  }
}

/** `sha256=<hex>`: HMAC-SHA256 of the raw body with the secret (the X-Tfc-Signature-256 header). */
export function signBody(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Delay before attempt `attempt + 1` after attempt `attempt` (1-based)
 * failed: base * 2^(attempt-1), capped, with "equal jitter" (a uniform
 * pick in the upper half) so that many receivers failing together do not
 * retry in lockstep.
 */
export function backoffMs(attempt: number, random: () => number, baseMs = 500, capMs = 30_000): number {
  const full = Math.min(capMs, baseMs * 2 ** (attempt - 1));
  return Math.round(full / 2 + random() * (full / 2));
}

/** Network errors, 5xx and 429 are worth another attempt; other answers are final. */
export function retryableStatus(status: number): boolean {
  return status >= 500 || status === 429;
}

/** A FIFO that keeps at most `capacity` items: pushing onto a full queue drops (and returns) the oldest. */
export class BoundedQueue<T> {
  private readonly items: T[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be a positive integer, got ${capacity}`);
  }

  push(item: T): T | undefined {
    this.items.push(item);
    return this.items.length > this.capacity ? this.items.shift() : undefined;
  }

  shift(): T | undefined {
    return this.items.shift();
  }

  drain(): T[] {
    return this.items.splice(0);
  }

  get length(): number {
    return this.items.length;
  }
}

interface Job {
  id: string;
  event: BusEvent;
  body: string;
  createdAt: string;
}

/** Dropped events whose log rows wait for the worker (the bus listener must not write to SQLite); beyond this they are only counted. */
const MAX_UNLOGGED_DROPS = 64;

interface Channel {
  target: WebhookTarget;
  /** redactUrl(target.url). */
  label: string;
  queue: BoundedQueue<Job>;
  running: boolean;
  worker?: Promise<void>;
  abort: AbortController;
  unloggedDrops: Job[];
  dropped: number;
  delivered: number;
  failed: number;
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Why an attempt failed, for the log: a timeout, the network error's code, or the message. */
function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `timed out after ${timeoutMs} ms`;
  if (e.name === 'AbortError') return 'aborted: daemon shutting down';
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message ?? 'fetch failed'}: ${cause}` : (e.message ?? String(err));
}

/**
 * Delivers bus events to webhooks: one worker and one bounded queue per
 * webhook, so a slow receiver delays only itself. `enqueue` never blocks
 * (the bus listener calls it). Each event is POSTed as JSON with
 * X-Tfc-Event, X-Tfc-Delivery, X-Tfc-Timestamp and, with a secret,
 * X-Tfc-Signature-256; network errors, 5xx and 429 are retried with
 * exponential backoff and jitter up to max_attempts; every outcome goes
 * to the delivery log.
 */
export class WebhookDispatcher {
  private readonly channels: Channel[];
  private readonly fetch: typeof fetch;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private closed = false;

  constructor(
    targets: readonly WebhookTarget[],
    private readonly options: DispatcherOptions = {},
  ) {
    this.channels = targets.map((target) => ({
      target,
      label: redactUrl(target.url),
      queue: new BoundedQueue<Job>(target.queueSize),
      running: false,
      abort: new AbortController(),
      unloggedDrops: [],
      dropped: 0,
      delivered: 0,
      failed: 0,
    }));
    this.fetch = options.fetch ?? fetch;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? defaultSleep;
  }

  /** Queues `event` for every webhook subscribed to its type and returns at once; ignored after stop(). */
  enqueue(event: BusEvent): void {
    if (this.closed) return;
    let body: string | undefined;
    for (const ch of this.channels) {
      if (!ch.target.events.includes(event.type)) continue;
      body ??= JSON.stringify(event);
      const dropped = ch.queue.push({ id: randomUUID(), event, body, createdAt: new Date().toISOString() });
      if (dropped) {
        ch.dropped++;
        if (ch.unloggedDrops.length < MAX_UNLOGGED_DROPS) ch.unloggedDrops.push(dropped);
      }
      if (!ch.running) {
        ch.running = true;
        ch.worker = this.work(ch);
      }
    }
  }

  status(): WebhookStatus[] {
    return this.channels.map((ch) => ({
      url: ch.label,
      events: [...ch.target.events],
      queued: ch.queue.length,
      dropped: ch.dropped,
      delivered: ch.delivered,
      failed: ch.failed,
    }));
  }

  /**
   * Stops accepting events, lets queued deliveries run for up to `drainMs`,
   * then aborts what is in flight and logs what is left as dropped.
   * Idempotent; never throws.
   */
  async stop(drainMs = 2000): Promise<void> {
    this.closed = true;
    const workers = () => Promise.all(this.channels.map((ch) => ch.worker));
    const timeout = new AbortController();
    await Promise.race([workers(), this.sleep(drainMs, timeout.signal)]);
    timeout.abort();
    for (const ch of this.channels) ch.abort.abort();
    await workers();
    for (const ch of this.channels) {
      this.logDrops(ch);
      for (const job of ch.queue.drain()) {
        ch.dropped++;
        this.logDrop(ch, job, 'not delivered: daemon shutting down');
      }
    }
  }

  private async work(ch: Channel): Promise<void> {
    try {
      // A microtask first: enqueue returns before any delivery starts.
      await Promise.resolve();
      for (let job = ch.queue.shift(); job; job = ch.abort.signal.aborted ? undefined : ch.queue.shift()) {
        this.logDrops(ch);
        try {
          await this.deliver(ch, job);
        } catch (err) {
          this.options.onError?.(`webhook ${ch.label}: delivery ${job.id} failed unexpectedly: ${(err as Error).message}`);
        }
      }
      this.logDrops(ch);
    } finally {
      // Synchronously after the last shift() found the queue empty: an enqueue from now on starts a new worker.
      ch.running = false;
    }
  }

  private async deliver(ch: Channel, job: Job): Promise<void> {
    const { target } = ch;
    let attempts = 0;
    let httpStatus: number | null = null;
    let error: string | null = null;
    let latencyMs: number | null = null;
    let ok = false;
    while (attempts < target.maxAttempts && !ch.abort.signal.aborted) {
      attempts++;
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'tfc-webhooks',
        'x-tfc-event': job.event.type,
        'x-tfc-delivery': job.id,
        'x-tfc-timestamp': String(Math.floor(Date.now() / 1000)),
      };
      if (target.secret) headers['x-tfc-signature-256'] = signBody(target.secret, job.body);
      const started = performance.now();
      let retry = true;
      let retryAfterMs: number | undefined;
      try {
        const res = await this.fetch(target.url, {
          method: 'POST',
          headers,
          body: job.body,
          redirect: 'manual',
          signal: AbortSignal.any([AbortSignal.timeout(target.timeoutMs), ch.abort.signal]),
        });
        // The answer's body is not needed; cancelling it frees the connection.
        await res.body?.cancel().catch(() => undefined);
        latencyMs = round(performance.now() - started);
        httpStatus = res.status;
        if (res.ok) {
          ok = true;
          error = null;
          break;
        }
        error = `HTTP ${res.status}`;
        retry = retryableStatus(res.status);
        const after = Number(res.headers.get('retry-after'));
        if (res.status === 429 && Number.isFinite(after) && after > 0) retryAfterMs = after * 1000;
      } catch (err) {
        latencyMs = round(performance.now() - started);
        httpStatus = null;
        error = describeFailure(err, target.timeoutMs);
      }
      if (!retry || attempts >= target.maxAttempts) break;
      const delay = Math.min(
        this.options.maxDelayMs ?? 30_000,
        retryAfterMs ?? backoffMs(attempts, this.random, this.options.baseDelayMs, this.options.maxDelayMs),
      );
      await this.sleep(delay, ch.abort.signal);
    }
    if (ok) ch.delivered++;
    else ch.failed++;
    this.log({
      id: job.id,
      webhook: ch.label,
      eventId: job.event.id,
      eventType: job.event.type,
      status: ok ? 'delivered' : 'failed',
      attempts,
      httpStatus,
      error,
      latencyMs,
      createdAt: job.createdAt,
      finishedAt: new Date().toISOString(),
    });
  }

  private logDrops(ch: Channel): void {
    for (const job of ch.unloggedDrops.splice(0)) this.logDrop(ch, job, `queue full (queue_size ${ch.target.queueSize}): dropped the oldest event`);
  }

  private logDrop(ch: Channel, job: Job, error: string): void {
    const now = new Date().toISOString();
    this.log({
      id: job.id,
      webhook: ch.label,
      eventId: job.event.id,
      eventType: job.event.type,
      status: 'dropped',
      attempts: 0,
      httpStatus: null,
      error,
      latencyMs: null,
      createdAt: job.createdAt,
      finishedAt: now,
    });
  }

  private log(d: DeliveryRecord): void {
    try {
      this.options.log?.recordDelivery(d);
    } catch (err) {
      this.options.onError?.(`webhook ${d.webhook}: could not record delivery ${d.id}: ${(err as Error).message}`);
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
