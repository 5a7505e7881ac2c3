import type { FastifyInstance } from 'fastify';
import type { AlertRecord, AlertStateFilter, DeliveryRecord } from '../../store/index.js';
import type { ApiDeps } from '../deps.js';
import { envelope } from '../errors.js';
import { ErrorBody } from '../schemas.js';

/**
 * The performance monitor over HTTP: alerts (GET /v1/alerts), the rules in
 * force with webhook queues (GET /v1/alerts/rules) and the webhook delivery
 * log (GET /v1/alerts/deliveries). Read-only; without `deps.alerts`
 * (`alerts.enabled = false`) they answer 404 NOT_FOUND.
 */

const STATES = ['active', 'pending', 'firing', 'resolved', 'all'] as const;

const AlertBody = {
  type: 'object',
  required: ['id', 'rule', 'state', 'labels', 'value', 'threshold', 'summary', 'started_at', 'fired_at', 'resolved_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    rule: { type: 'string' },
    state: { type: 'string', enum: ['pending', 'firing', 'resolved'] },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    value: { type: 'number' },
    threshold: { type: 'number' },
    summary: { type: 'string' },
    started_at: { type: 'string', description: 'when the breach was first seen' },
    fired_at: { type: ['string', 'null'] },
    resolved_at: { type: ['string', 'null'] },
    updated_at: { type: 'string' },
  },
} as const;

const RuleBody = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    enabled: { type: 'boolean' },
    comparison: { type: 'string', enum: ['above', 'below', 'at_most'] },
    threshold: { type: 'number' },
    for_ms: { type: 'integer' },
    unit: { type: 'string' },
    labels: { type: 'array', items: { type: 'string' } },
    description: { type: 'string' },
  },
} as const;

const WebhookBody = {
  type: 'object',
  properties: {
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string' } },
    queued: { type: 'integer' },
    dropped: { type: 'integer' },
    delivered: { type: 'integer' },
    failed: { type: 'integer' },
  },
} as const;

const DeliveryBody = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    webhook: { type: 'string' },
    event_id: { type: 'integer' },
    event_type: { type: 'string' },
    status: { type: 'string', enum: ['delivered', 'failed', 'dropped'] },
    attempts: { type: 'integer' },
    http_status: { type: ['integer', 'null'] },
    error: { type: ['string', 'null'] },
    latency_ms: { type: ['number', 'null'] },
    created_at: { type: 'string' },
    finished_at: { type: 'string' },
  },
} as const;

// Query values are strings (the app does not coerce types): a pattern, then parsed and bounded.
const LimitQuery = { limit: { type: 'string', pattern: '^[0-9]{1,4}$', description: 'at most this many, newest first (1-1000, default 100)' } } as const;

/** `limit` of a query, within 1..1000 (default 100). */
function limitOf(raw: string | undefined): number {
  return raw === undefined ? 100 : Math.min(1000, Math.max(1, Number(raw)));
}

/** The JSON shape of an alert (snake_case, as the bus and the CLI show it). */
export function alertView(a: AlertRecord) {
  return {
    id: a.id,
    rule: a.rule,
    state: a.state,
    labels: a.labels,
    value: a.value,
    threshold: a.threshold,
    summary: a.summary,
    started_at: a.startedAt,
    fired_at: a.firedAt,
    resolved_at: a.resolvedAt,
    updated_at: a.updatedAt,
  };
}

function deliveryView(d: DeliveryRecord) {
  return {
    id: d.id,
    webhook: d.webhook,
    event_id: d.eventId,
    event_type: d.eventType,
    status: d.status,
    attempts: d.attempts,
    http_status: d.httpStatus,
    error: d.error,
    latency_ms: d.latencyMs,
    created_at: d.createdAt,
    finished_at: d.finishedAt,
  };
}

const DISABLED = 'alerts are not enabled in this server; set alerts.enabled = true in tfc.toml and restart tfc serve';

export function alertRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get<{ Querystring: { state?: AlertStateFilter; limit?: string } }>(
    '/v1/alerts',
    {
      schema: {
        summary: 'Alerts of the performance monitor, newest first (state: active = pending and firing, the default)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { state: { type: 'string', enum: [...STATES] }, ...LimitQuery },
        },
        response: { 200: { type: 'object', properties: { alerts: { type: 'array', items: AlertBody } } }, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (req, reply) => {
      if (!deps.alerts) return reply.code(404).send(envelope('NOT_FOUND', DISABLED).body);
      return { alerts: deps.alerts.list(req.query.state ?? 'active', limitOf(req.query.limit)).map(alertView) };
    },
  );

  app.get(
    '/v1/alerts/rules',
    {
      schema: {
        summary: 'Rules in force (defaults with [alerts.rules.NAME] applied) and the webhooks with their queues',
        response: {
          200: {
            type: 'object',
            properties: { eval_interval_ms: { type: 'integer' }, rules: { type: 'array', items: RuleBody }, webhooks: { type: 'array', items: WebhookBody } },
          },
          404: ErrorBody,
        },
      },
    },
    async (_req, reply) => {
      if (!deps.alerts) return reply.code(404).send(envelope('NOT_FOUND', DISABLED).body);
      return {
        eval_interval_ms: deps.alerts.evalIntervalMs,
        rules: deps.alerts.rules().map((r) => ({
          name: r.name,
          enabled: r.enabled,
          comparison: r.comparison,
          threshold: r.threshold,
          for_ms: r.forMs,
          unit: r.unit,
          labels: [...r.labels],
          description: r.description,
        })),
        webhooks: deps.alerts.webhooks(),
      };
    },
  );

  app.get<{ Querystring: { limit?: string } }>(
    '/v1/alerts/deliveries',
    {
      schema: {
        summary: 'The webhook delivery log, newest first',
        querystring: { type: 'object', additionalProperties: false, properties: { ...LimitQuery } },
        response: { 200: { type: 'object', properties: { deliveries: { type: 'array', items: DeliveryBody } } }, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (req, reply) => {
      if (!deps.alerts) return reply.code(404).send(envelope('NOT_FOUND', DISABLED).body);
      return { deliveries: deps.alerts.deliveries(limitOf(req.query.limit)).map(deliveryView) };
    },
  );
}
