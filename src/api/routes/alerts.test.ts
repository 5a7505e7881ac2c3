import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertMonitor } from '../../alerts/index.js';
import { EventBus } from '../../events/index.js';
import { AlertRepository, openDatabase, type Db } from '../../store/index.js';
import { FAKE_TOKEN, fakeDeps, fakeVm } from '../../testing/fake-api-deps.js';
import { buildApp } from '../app.js';

// The alert routes over the real app and a real AlertMonitor on an
// in-memory store (fake clock): what a client sees of alerts, rules and
// deliveries, every field through the response schemas.
const auth = { authorization: `Bearer ${FAKE_TOKEN}` };

describe('GET /v1/alerts, /v1/alerts/rules, /v1/alerts/deliveries', () => {
  let app: FastifyInstance | undefined;
  let db: Db | undefined;
  let monitor: AlertMonitor | undefined;
  afterEach(async () => {
    await app?.close();
    await monitor?.stop(0);
    db?.close();
  });

  const start = async () => {
    let now = Date.parse('2026-12-01T00:00:00.000Z');
    const bus = new EventBus();
    db = openDatabase(':memory:');
    const repo = new AlertRepository(db);
    monitor = new AlertMonitor({
      bus,
      alerts: { enabled: true, evalIntervalMs: 60_000, rules: { pool_empty: { forMs: 1000 } }, webhooks: [] },
      profiles: {},
      dataDir: '/data',
      repo,
      now: () => now,
      host: { memory: () => null, disk: () => null },
    });
    monitor.start();
    repo.recordDelivery({
      id: 'd1',
      webhook: 'https://hooks.example/',
      eventId: 3,
      eventType: 'alert',
      status: 'failed',
      attempts: 5,
      httpStatus: 503,
      error: 'HTTP 503',
      latencyMs: 12.5,
      createdAt: '2026-12-01T00:00:00.000Z',
      finishedAt: '2026-12-01T00:00:09.000Z',
    });
    app = await buildApp({ ...fakeDeps(fakeVm()), alerts: monitor });
    return { bus, advance: (ms: number) => (now += ms) };
  };
  const get = async (url: string) => {
    const res = await app!.inject({ method: 'GET', url, headers: auth });
    return { status: res.statusCode, json: res.json() };
  };

  it('lists active alerts by default, and firing, resolved or all on request', async () => {
    const { bus, advance } = await start();
    bus.publish('pool', { pool: 'web', ready: 0, booting: 1, allocated: 2, target: 2 });
    monitor!.evaluate();
    const pending = await get('/v1/alerts');
    expect(pending.json.alerts).toEqual([
      {
        id: expect.any(String),
        rule: 'pool_empty',
        state: 'pending',
        labels: { pool: 'web' },
        value: 0,
        threshold: 0,
        summary: 'pool web has 0 ready VMs (target 2, 1 booting, 2 allocated)',
        started_at: '2026-12-01T00:00:00.000Z',
        fired_at: null,
        resolved_at: null,
        updated_at: '2026-12-01T00:00:00.000Z',
      },
    ]);
    advance(1000);
    monitor!.evaluate();
    expect((await get('/v1/alerts?state=firing')).json.alerts.map((a: { fired_at: string }) => a.fired_at)).toEqual(['2026-12-01T00:00:01.000Z']);
    bus.publish('pool', { pool: 'web', ready: 1, booting: 0, allocated: 2, target: 2 });
    advance(1000);
    monitor!.evaluate();
    expect((await get('/v1/alerts')).json.alerts).toEqual([]);
    expect((await get('/v1/alerts?state=resolved&limit=5')).json.alerts).toMatchObject([{ state: 'resolved', resolved_at: '2026-12-01T00:00:02.000Z' }]);
    expect((await get('/v1/alerts?state=all')).json.alerts).toHaveLength(1);
  });

  it('rejects an unknown state or limit with INVALID_ARGUMENT', async () => {
    await start();
    for (const url of ['/v1/alerts?state=burning', '/v1/alerts?limit=-1', '/v1/alerts?colour=red']) {
      const r = await get(url);
      expect(r.status, url).toBe(400);
      expect(r.json.error.code).toBe('INVALID_ARGUMENT');
    }
  });

  it('serves the rules in force and the delivery log', async () => {
    await start();
    const rules = await get('/v1/alerts/rules');
    expect(rules.json.eval_interval_ms).toBe(60_000);
    expect(rules.json.rules.map((r: { name: string }) => r.name)).toEqual([
      'boot_time',
      'restore_time',
      'allocation_p99',
      'pool_empty',
      'allocation_failure_ratio',
      'vm_failure_rate',
      'host_memory_low',
      'disk_free_low',
    ]);
    expect(rules.json.rules[3]).toEqual({
      name: 'pool_empty',
      enabled: true,
      comparison: 'at_most',
      threshold: 0,
      for_ms: 1000,
      unit: 'ready VMs',
      labels: ['pool'],
      description: expect.stringMatching(/ready VMs/),
    });
    expect(rules.json.webhooks).toEqual([]);
    const log = await get('/v1/alerts/deliveries?limit=10');
    expect(log.json.deliveries).toEqual([
      {
        id: 'd1',
        webhook: 'https://hooks.example/',
        event_id: 3,
        event_type: 'alert',
        status: 'failed',
        attempts: 5,
        http_status: 503,
        error: 'HTTP 503',
        latency_ms: 12.5,
        created_at: '2026-12-01T00:00:00.000Z',
        finished_at: '2026-12-01T00:00:09.000Z',
      },
    ]);
  });

  it('answers 404 NOT_FOUND saying how to enable alerts when the server has none', async () => {
    app = await buildApp(fakeDeps(fakeVm()));
    for (const url of ['/v1/alerts', '/v1/alerts/rules', '/v1/alerts/deliveries']) {
      const r = await get(url);
      expect(r.status).toBe(404);
      expect(r.json.error).toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/alerts\.enabled = true/) });
    }
    expect((await app.inject({ method: 'GET', url: '/v1/alerts' })).statusCode).toBe(401);
  });
});
