import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AlertRepository, type AlertRecord, type DeliveryRecord } from './alert-repository.js';
import { openDatabase, type Db } from './database.js';

const alert = (id: string, state: AlertRecord['state'], at: string): AlertRecord => ({
  id,
  rule: 'pool_empty',
  labels: { pool: 'default' },
  state,
  value: 0,
  threshold: 0,
  summary: `alert ${id}`,
  startedAt: at,
  firedAt: state === 'pending' ? null : at,
  resolvedAt: state === 'resolved' ? at : null,
  updatedAt: at,
});

const delivery = (n: number): DeliveryRecord => ({
  id: `d${n}`,
  webhook: 'https://hooks.example/',
  eventId: n,
  eventType: 'alert',
  status: 'delivered',
  attempts: 1,
  httpStatus: 200,
  error: null,
  latencyMs: 1.5,
  createdAt: '2026-12-01T00:00:00.000Z',
  finishedAt: '2026-12-01T00:00:01.000Z',
});

describe('AlertRepository', () => {
  let db: Db;
  beforeEach(() => {
    db = openDatabase(':memory:');
  });
  afterEach(() => db.close());

  it('updates an alert in place through its states and filters by state', () => {
    const repo = new AlertRepository(db);
    repo.upsert(alert('a', 'pending', '2026-12-01T00:00:00.000Z'));
    repo.upsert(alert('b', 'firing', '2026-12-01T00:00:01.000Z'));
    expect(repo.list('active').map((a) => a.id)).toEqual(['b', 'a']);
    repo.upsert({ ...alert('a', 'firing', '2026-12-01T00:00:02.000Z'), startedAt: '2026-12-01T00:00:00.000Z' });
    expect(repo.list('firing').map((a) => a.id)).toEqual(['a', 'b']);
    expect(repo.get('a')).toMatchObject({
      state: 'firing',
      startedAt: '2026-12-01T00:00:00.000Z',
      firedAt: '2026-12-01T00:00:02.000Z',
      labels: { pool: 'default' },
    });
    repo.upsert(alert('a', 'resolved', '2026-12-01T00:00:03.000Z'));
    expect(repo.list('pending')).toEqual([]);
    expect(repo.list('resolved').map((a) => a.id)).toEqual(['a']);
    expect(repo.list('all', 1).map((a) => a.id)).toEqual(['a']);
  });

  it('keeps at most maxResolved resolved alerts (oldest deleted) and never deletes active ones', () => {
    const repo = new AlertRepository(db, { maxResolved: 3, maxDeliveries: 10 });
    repo.upsert(alert('live', 'firing', '2026-12-01T00:00:00.000Z'));
    for (let i = 0; i < 6; i++) repo.upsert(alert(`r${i}`, 'resolved', `2026-12-01T00:00:0${i}.000Z`));
    expect(repo.list('resolved').map((a) => a.id)).toEqual(['r5', 'r4', 'r3']);
    expect(repo.list('firing').map((a) => a.id)).toEqual(['live']);
  });

  it('resolves what an earlier daemon left active', () => {
    const repo = new AlertRepository(db);
    repo.upsert(alert('a', 'firing', '2026-12-01T00:00:00.000Z'));
    repo.upsert(alert('b', 'resolved', '2026-12-01T00:00:00.000Z'));
    expect(repo.resolveStale('2026-12-02T00:00:00.000Z', 'daemon restarted')).toBe(1);
    expect(repo.get('a')).toMatchObject({ state: 'resolved', resolvedAt: '2026-12-02T00:00:00.000Z', summary: 'alert a (daemon restarted)' });
    expect(repo.get('b')!.summary).toBe('alert b');
  });

  it('logs deliveries newest first with bounded retention', () => {
    const repo = new AlertRepository(db, { maxResolved: 10, maxDeliveries: 3 });
    for (let i = 1; i <= 5; i++) repo.recordDelivery(delivery(i));
    expect(repo.deliveries().map((d) => d.eventId)).toEqual([5, 4, 3]);
    expect(repo.deliveries(1)[0]).toEqual(delivery(5));
  });

  it('reports a failed write as STORE_ERROR', () => {
    const repo = new AlertRepository(db);
    db.close();
    expect(() => repo.upsert(alert('a', 'pending', 'x'))).toThrow(expect.objectContaining({ code: 'STORE_ERROR' }));
    db = openDatabase(':memory:');
  });
});
