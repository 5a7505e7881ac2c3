import type { Db } from './database.js';
import { guardStore } from './store-error.js';

/** One alert as stored (table `alerts`); times are ISO 8601. */
export interface AlertRecord {
  id: string;
  rule: string;
  labels: Record<string, string>;
  state: 'pending' | 'firing' | 'resolved';
  value: number;
  threshold: number;
  summary: string;
  startedAt: string;
  firedAt: string | null;
  resolvedAt: string | null;
  updatedAt: string;
}

/** One webhook delivery of one event (table `webhook_deliveries`). */
export interface DeliveryRecord {
  /** The X-Tfc-Delivery id (the same on every attempt). */
  id: string;
  webhook: string;
  eventId: number;
  eventType: string;
  /** delivered (2xx), failed (attempts exhausted or a 4xx), dropped (queue full or shutdown). */
  status: 'delivered' | 'failed' | 'dropped';
  attempts: number;
  /** The last HTTP status received, or null when none (network error, timeout, dropped). */
  httpStatus: number | null;
  error: string | null;
  /** Duration of the last attempt. */
  latencyMs: number | null;
  createdAt: string;
  finishedAt: string;
}

export type AlertStateFilter = 'active' | 'pending' | 'firing' | 'resolved' | 'all';

/** How many rows are kept: resolved alerts and deliveries beyond these are deleted, oldest first. */
export interface AlertRetention {
  /** Default 1000. */
  maxResolved: number;
  /** Default 1000. */
  maxDeliveries: number;
}

export const DEFAULT_ALERT_RETENTION: AlertRetention = { maxResolved: 1000, maxDeliveries: 1000 };

interface AlertRow {
  id: string;
  rule: string;
  labels: string;
  state: AlertRecord['state'];
  value: number;
  threshold: number;
  summary: string;
  started_at: string;
  fired_at: string | null;
  resolved_at: string | null;
  updated_at: string;
}

interface DeliveryRow {
  id: string;
  webhook: string;
  event_id: number;
  event_type: string;
  status: DeliveryRecord['status'];
  attempts: number;
  http_status: number | null;
  error: string | null;
  latency_ms: number | null;
  created_at: string;
  finished_at: string;
}

const fromAlertRow = (r: AlertRow): AlertRecord => ({
  id: r.id,
  rule: r.rule,
  labels: JSON.parse(r.labels) as Record<string, string>,
  state: r.state,
  value: r.value,
  threshold: r.threshold,
  summary: r.summary,
  startedAt: r.started_at,
  firedAt: r.fired_at,
  resolvedAt: r.resolved_at,
  updatedAt: r.updated_at,
});

const fromDeliveryRow = (r: DeliveryRow): DeliveryRecord => ({
  id: r.id,
  webhook: r.webhook,
  eventId: r.event_id,
  eventType: r.event_type,
  status: r.status,
  attempts: r.attempts,
  httpStatus: r.http_status,
  error: r.error,
  latencyMs: r.latency_ms,
  createdAt: r.created_at,
  finishedAt: r.finished_at,
});

/**
 * Alerts of the performance monitor and the webhook delivery log. Active
 * (pending, firing) alerts are one row each, updated in place; resolved
 * ones and deliveries are kept up to the retention bounds, oldest deleted
 * first. Every method is synchronous and throws STORE_ERROR on a failed write.
 */
export class AlertRepository {
  constructor(
    private readonly db: Db,
    private readonly retention: AlertRetention = DEFAULT_ALERT_RETENTION,
  ) {}

  /** Inserts or updates an alert by id; a resolved alert prunes the oldest beyond `maxResolved`. */
  upsert(alert: AlertRecord): void {
    guardStore(`record alert ${alert.rule}`, this.db.name, () => {
      this.db
        .prepare(
          `INSERT INTO alerts (id, rule, labels, state, value, threshold, summary, started_at, fired_at, resolved_at, updated_at)
           VALUES (@id, @rule, @labels, @state, @value, @threshold, @summary, @startedAt, @firedAt, @resolvedAt, @updatedAt)
           ON CONFLICT(id) DO UPDATE SET state = excluded.state, value = excluded.value, threshold = excluded.threshold, summary = excluded.summary,
             fired_at = excluded.fired_at, resolved_at = excluded.resolved_at, updated_at = excluded.updated_at`,
        )
        .run({ ...alert, labels: JSON.stringify(alert.labels) });
      if (alert.state === 'resolved') {
        this.db
          .prepare(
            `DELETE FROM alerts WHERE state = 'resolved' AND id NOT IN (SELECT id FROM alerts WHERE state = 'resolved' ORDER BY resolved_at DESC, rowid DESC LIMIT ?)`,
          )
          .run(this.retention.maxResolved);
      }
    });
  }

  /** Alerts in `state` (active = pending and firing), newest first, at most `limit`. */
  list(state: AlertStateFilter = 'active', limit = 100): AlertRecord[] {
    const where = state === 'all' ? '' : state === 'active' ? `WHERE state IN ('pending', 'firing')` : `WHERE state = @state`;
    const rows = this.db.prepare(`SELECT * FROM alerts ${where} ORDER BY updated_at DESC, rowid DESC LIMIT @limit`).all({ state, limit }) as AlertRow[];
    return rows.map(fromAlertRow);
  }

  get(id: string): AlertRecord | undefined {
    const row = this.db.prepare('SELECT * FROM alerts WHERE id = ?').get(id) as AlertRow | undefined;
    return row && fromAlertRow(row);
  }

  /**
   * Resolves alerts left pending or firing by an earlier daemon process
   * (nothing measures them any more); returns how many.
   */
  resolveStale(at: string, reason: string): number {
    return guardStore('resolve alerts of an earlier daemon', this.db.name, () => {
      const r = this.db
        .prepare(`UPDATE alerts SET state = 'resolved', resolved_at = ?, updated_at = ?, summary = summary || ? WHERE state IN ('pending', 'firing')`)
        .run(at, at, ` (${reason})`);
      return r.changes;
    });
  }

  /** Appends one delivery, pruning the oldest beyond `maxDeliveries`. */
  recordDelivery(d: DeliveryRecord): void {
    guardStore('record a webhook delivery', this.db.name, () => {
      this.db
        .prepare(
          `INSERT OR REPLACE INTO webhook_deliveries (id, webhook, event_id, event_type, status, attempts, http_status, error, latency_ms, created_at, finished_at)
           VALUES (@id, @webhook, @eventId, @eventType, @status, @attempts, @httpStatus, @error, @latencyMs, @createdAt, @finishedAt)`,
        )
        .run(d);
      this.db
        .prepare('DELETE FROM webhook_deliveries WHERE seq NOT IN (SELECT seq FROM webhook_deliveries ORDER BY seq DESC LIMIT ?)')
        .run(this.retention.maxDeliveries);
    });
  }

  /** The newest deliveries first, at most `limit`. */
  deliveries(limit = 100): DeliveryRecord[] {
    const rows = this.db.prepare('SELECT * FROM webhook_deliveries ORDER BY seq DESC LIMIT ?').all(limit) as DeliveryRow[];
    return rows.map(fromDeliveryRow);
  }
}
