import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BusEvent } from '../events/index.js';
import type { DeliveryRecord } from '../store/index.js';
import { backoffMs, BoundedQueue, redactUrl, retryableStatus, signBody, WebhookDispatcher, type WebhookTarget } from './webhooks.js';

const event = (id: number, type: BusEvent['type'] = 'alert'): BusEvent =>
  ({
    id,
    type,
    time: '2026-12-01T00:00:00.000Z',
    data: { id: 'a', rule: 'pool_empty', state: 'firing', labels: {}, value: 0, threshold: 0, summary: 's', since: 'x' },
  }) as BusEvent;

describe('signature and retry policy', () => {
  it('signs the raw body with HMAC-SHA256 as sha256=<hex>', () => {
    // RFC 4231 test case 2.
    expect(signBody('Jefe', 'what do ya want for nothing?')).toBe('sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });

  it('backs off exponentially with jitter in the upper half, capped', () => {
    const low = [1, 2, 3, 4, 5, 8].map((n) => backoffMs(n, () => 0));
    const high = [1, 2, 3, 4, 5, 8].map((n) => backoffMs(n, () => 0.999999));
    expect(low).toEqual([250, 500, 1000, 2000, 4000, 15000]);
    expect(high).toEqual([500, 1000, 2000, 4000, 8000, 30000]);
  });

  it('retries 5xx and 429 only', () => {
    expect([500, 502, 503, 429, 400, 401, 404, 410, 302].map(retryableStatus)).toEqual([true, true, true, true, false, false, false, false, false]);
  });

  it('shows webhooks without credentials or query string', () => {
    expect(redactUrl('https://user:pw@hooks.example:8443/p/x?token=abc')).toBe('https://hooks.example:8443/p/x?…');
    expect(redactUrl('http://127.0.0.1:9000/hook')).toBe('http://127.0.0.1:9000/hook');
  });

  it('keeps a bounded queue, dropping the oldest', () => {
    const q = new BoundedQueue<number>(2);
    expect([q.push(1), q.push(2), q.push(3)]).toEqual([undefined, undefined, 1]);
    expect(q.drain()).toEqual([2, 3]);
    expect(() => new BoundedQueue(0)).toThrow(RangeError);
  });
});

describe('WebhookDispatcher against a real HTTP receiver', () => {
  let server: Server;
  let url: string;
  let received: Array<{ headers: IncomingHttpHeaders; body: string }>;
  let statuses: number[];
  let dispatcher: WebhookDispatcher | undefined;
  const log: DeliveryRecord[] = [];
  const sleeps: number[] = [];

  beforeEach(async () => {
    received = [];
    statuses = [];
    log.length = 0;
    sleeps.length = 0;
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(statuses.shift() ?? 200);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });

  afterEach(async () => {
    await dispatcher?.stop(0);
    dispatcher = undefined;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const start = (over: Partial<WebhookTarget> = {}) => {
    const target: WebhookTarget = { url, secret: 's3cret', events: ['alert'], timeoutMs: 2000, maxAttempts: 3, queueSize: 8, ...over };
    dispatcher = new WebhookDispatcher([target], {
      log: { recordDelivery: (d) => log.push(d) },
      random: () => 0,
      sleep: async (ms) => void sleeps.push(ms),
    });
    return dispatcher;
  };
  const settle = async (n: number) => {
    const end = Date.now() + 5000;
    while (log.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  };

  it('POSTs the event as JSON with its headers and a verifiable signature', async () => {
    start().enqueue(event(7));
    await settle(1);
    expect(received).toHaveLength(1);
    const { headers, body } = received[0];
    expect(JSON.parse(body)).toMatchObject({ id: 7, type: 'alert', data: { rule: 'pool_empty' } });
    expect(headers['content-type']).toBe('application/json');
    expect(headers['x-tfc-event']).toBe('alert');
    expect(headers['x-tfc-delivery']).toBe(log[0].id);
    expect(Number(headers['x-tfc-timestamp'])).toBeGreaterThan(1_700_000_000);
    expect(headers['x-tfc-signature-256']).toBe(`sha256=${createHmac('sha256', 's3cret').update(body).digest('hex')}`);
    expect(log[0]).toMatchObject({ status: 'delivered', attempts: 1, httpStatus: 200, error: null, eventId: 7, eventType: 'alert' });
  });

  it('retries a 500 with backoff and logs one delivery with its attempts', async () => {
    statuses = [500, 503];
    start().enqueue(event(1));
    await settle(1);
    expect(received).toHaveLength(3);
    expect(new Set(received.map((r) => r.headers['x-tfc-delivery'])).size).toBe(1);
    expect(sleeps).toEqual([250, 500]);
    expect(log[0]).toMatchObject({ status: 'delivered', attempts: 3, httpStatus: 200 });
  });

  it('does not retry a 4xx other than 429, and gives up after max_attempts', async () => {
    statuses = [404];
    start().enqueue(event(1));
    await settle(1);
    expect(log[0]).toMatchObject({ status: 'failed', attempts: 1, httpStatus: 404, error: 'HTTP 404' });
    statuses = [500, 500, 500];
    dispatcher!.enqueue(event(2));
    await settle(2);
    expect(log[1]).toMatchObject({ status: 'failed', attempts: 3, httpStatus: 500 });
    expect(dispatcher!.status()[0]).toMatchObject({ delivered: 0, failed: 2, queued: 0 });
  });

  it('retries network errors and sends only subscribed event types, unsigned without a secret', async () => {
    start({ url: 'http://127.0.0.1:1/closed', maxAttempts: 2 }).enqueue(event(1));
    await settle(1);
    expect(log[0]).toMatchObject({ status: 'failed', attempts: 2, httpStatus: null });
    expect(log[0].error).toMatch(/fetch failed/);
    await dispatcher!.stop(0);
    start({ secret: null, events: ['pool'] });
    dispatcher!.enqueue(event(1, 'alert'));
    dispatcher!.enqueue(event(2, 'pool'));
    await settle(2);
    expect(received.map((r) => JSON.parse(r.body).id)).toEqual([2]);
    expect(received[0].headers['x-tfc-signature-256']).toBeUndefined();
  });

  it('bounds its queue: a full queue drops its oldest event, counted and logged', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const target: WebhookTarget = { url, secret: null, events: ['alert'], timeoutMs: 2000, maxAttempts: 1, queueSize: 2 };
    const slowFetch: typeof fetch = async (...args) => {
      await gate;
      return fetch(...args);
    };
    dispatcher = new WebhookDispatcher([target], { log: { recordDelivery: (d) => log.push(d) }, fetch: slowFetch });
    dispatcher.enqueue(event(1));
    await new Promise((r) => setImmediate(r)); // the worker took event 1 and waits at the gate
    for (let i = 2; i <= 5; i++) dispatcher.enqueue(event(i)); // 2..5 into 2 places: 2 and 3 dropped
    expect(dispatcher.status()[0]).toMatchObject({ queued: 2, dropped: 2 });
    release();
    await settle(5);
    expect(log.filter((d) => d.status === 'dropped').map((d) => d.eventId)).toEqual([2, 3]);
    expect(log.filter((d) => d.status === 'delivered').map((d) => d.eventId)).toEqual([1, 4, 5]);
  });

  it('stop() drains for at most drainMs, then aborts and logs the rest as dropped', async () => {
    const target: WebhookTarget = { url, secret: null, events: ['alert'], timeoutMs: 60_000, maxAttempts: 1, queueSize: 4 };
    const hang: typeof fetch = (_url, init) => new Promise((_r, reject) => init!.signal!.addEventListener('abort', () => reject(init!.signal!.reason)));
    dispatcher = new WebhookDispatcher([target], { log: { recordDelivery: (d) => log.push(d) }, fetch: hang });
    dispatcher.enqueue(event(1));
    dispatcher.enqueue(event(2));
    const t0 = Date.now();
    await dispatcher.stop(100);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(log.map((d) => [d.eventId, d.status])).toEqual([
      [1, 'failed'],
      [2, 'dropped'],
    ]);
    dispatcher.enqueue(event(3));
    expect(dispatcher.status()[0].queued).toBe(0);
  });
});
