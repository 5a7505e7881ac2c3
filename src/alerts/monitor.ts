import { ConfigInvalidError } from '../errors/index.js';
import type { EventBus } from '../events/index.js';
import type { AlertsConfig, Profile } from '../config/types.js';
import type { AlertRecord, AlertRepository, AlertStateFilter, DeliveryRecord } from '../store/index.js';
import { AlertEvaluator, type Alert, type Transition } from './evaluator.js';
import { systemHost, type HostReader } from './host.js';
import { Measurements, type PoolCounts } from './measurements.js';
import { effectiveRules, type EffectiveRule, type RuleName } from './rules.js';
import { WebhookDispatcher, type DispatcherOptions, type WebhookStatus, type WebhookTarget } from './webhooks.js';

/** `[alerts]` defaults for a Config built by hand (the file's defaults are the same). */
export const DEFAULT_ALERTS_CONFIG: AlertsConfig = { enabled: true, evalIntervalMs: 1000, rules: {}, webhooks: [] };

export interface AlertMonitorOptions {
  bus: EventBus;
  /** `[alerts]` of the config. */
  alerts: AlertsConfig;
  profiles: Readonly<Record<string, Pick<Profile, 'bootLevel' | 'targetMs'>>>;
  dataDir: string;
  repo: AlertRepository;
  /** Live pool counts (PoolManager.list); without it the bus's `pool` events are used. */
  readPools?: () => PoolCounts[];
  /** Environment `secret_env` is read from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Clock in ms since the epoch; default Date.now. */
  now?: () => number;
  host?: HostReader;
  /** Webhook delivery knobs (fetch, jitter, delays) for tests. */
  webhooks?: Omit<DispatcherOptions, 'log' | 'onError'>;
  onError?: (message: string) => void;
}

/** What the API serves (`ApiDeps.alerts`). */
export interface AlertsView {
  list(state?: AlertStateFilter, limit?: number): AlertRecord[];
  rules(): EffectiveRule[];
  evalIntervalMs: number;
  webhooks(): WebhookStatus[];
  deliveries(limit?: number): DeliveryRecord[];
}

/**
 * Resolves each webhook's secret (`secret`, or the variable `secret_env`
 * names). Throws CONFIG_INVALID naming the key when the variable is unset
 * or empty, so the daemon does not start sending unsigned events.
 */
export function webhookTargets(alerts: AlertsConfig, env: NodeJS.ProcessEnv): WebhookTarget[] {
  return alerts.webhooks.map((w, i) => {
    let secret = w.secret;
    if (w.secretEnv) {
      secret = env[w.secretEnv] || null;
      if (!secret) {
        throw new ConfigInvalidError(
          `alerts.webhooks.${i}.secret_env names the environment variable ${w.secretEnv}, which is not set; set it to the webhook's HMAC key or use secret = "..."`,
          { details: { errors: [{ key: `alerts.webhooks.${i}.secret_env`, value: w.secretEnv, message: 'environment variable not set' }] } },
        );
      }
    }
    return { url: w.url, secret, events: w.events, timeoutMs: w.timeoutMs, maxAttempts: w.maxAttempts, queueSize: w.queueSize };
  });
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * The performance monitor: collects measurements from the event bus into
 * bounded windows, evaluates the rules every `eval_interval_ms`, keeps the
 * alerts in SQLite, publishes an `alert` event at every state change, and
 * hands subscribed events to the webhooks. Start once; stop is idempotent.
 */
export class AlertMonitor implements AlertsView {
  private readonly measurements: Measurements;
  private readonly evaluator: AlertEvaluator;
  private readonly ruleList: EffectiveRule[];
  private readonly dispatcher: WebhookDispatcher;
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;
  private unsubscribe?: () => void;
  private stopped?: Promise<void>;

  constructor(private readonly options: AlertMonitorOptions) {
    this.now = options.now ?? Date.now;
    this.ruleList = effectiveRules(options.alerts);
    this.evaluator = new AlertEvaluator(new Map(this.ruleList.map((r) => [r.name, r] as [RuleName, EffectiveRule])));
    this.measurements = new Measurements(
      { profiles: options.profiles, dataDir: options.dataDir, host: options.host ?? systemHost, readPools: options.readPools },
      this.now,
    );
    this.dispatcher = new WebhookDispatcher(webhookTargets(options.alerts, options.env ?? process.env), {
      ...options.webhooks,
      log: options.repo,
      onError: options.onError,
    });
  }

  get evalIntervalMs(): number {
    return this.options.alerts.evalIntervalMs;
  }

  /**
   * Resolves alerts an earlier daemon left active, subscribes to the bus
   * and starts the evaluation timer. Call once.
   */
  start(): void {
    this.options.repo.resolveStale(new Date(this.now()).toISOString(), 'daemon restarted');
    this.unsubscribe = this.options.bus.subscribe((event) => {
      this.measurements.record(event);
      this.dispatcher.enqueue(event);
    });
    this.timer = setInterval(() => {
      try {
        this.evaluate();
      } catch (err) {
        // A fault in one evaluation must not take the daemon down; the next one tries again.
        this.options.onError?.(`alerts: evaluation failed: ${(err as Error).message}`);
      }
    }, this.options.alerts.evalIntervalMs);
    // The daemon's close() stops the monitor; the timer alone must not keep a process alive.
    this.timer.unref();
  }

  /** One evaluation now: returns the transitions, each stored and published. A store failure is reported to onError, not thrown. */
  evaluate(): Transition[] {
    if (this.stopped) return [];
    const transitions = this.evaluator.evaluate(this.now(), this.measurements.observe(this.ruleList));
    for (const t of transitions) {
      try {
        this.options.repo.upsert(this.record(t.alert));
      } catch (err) {
        this.options.onError?.(`alerts: could not store alert ${t.alert.rule}: ${(err as Error).message}`);
      }
      this.options.bus.publish('alert', {
        id: t.alert.id,
        rule: t.alert.rule,
        state: t.alert.state,
        labels: t.alert.labels,
        value: t.alert.value,
        threshold: t.alert.threshold,
        summary: t.alert.summary,
        since: iso(t.alert.startedAt)!,
      });
    }
    return transitions;
  }

  list(state: AlertStateFilter = 'active', limit = 100): AlertRecord[] {
    return this.options.repo.list(state, limit);
  }

  rules(): EffectiveRule[] {
    return this.ruleList.map((r) => ({ ...r }));
  }

  webhooks(): WebhookStatus[] {
    return this.dispatcher.status();
  }

  deliveries(limit = 100): DeliveryRecord[] {
    return this.options.repo.deliveries(limit);
  }

  /**
   * Stops the timer and the bus subscription, then gives queued webhook
   * deliveries up to `drainMs` before dropping them. Idempotent.
   */
  stop(drainMs = 2000): Promise<void> {
    return (this.stopped ??= (async () => {
      clearInterval(this.timer);
      this.unsubscribe?.();
      await this.dispatcher.stop(drainMs);
    })());
  }

  private record(a: Alert): AlertRecord {
    return {
      id: a.id,
      rule: a.rule,
      labels: a.labels,
      state: a.state,
      value: a.value,
      threshold: a.threshold,
      summary: a.summary,
      startedAt: iso(a.startedAt)!,
      firedAt: iso(a.firedAt),
      resolvedAt: iso(a.resolvedAt),
      updatedAt: new Date(this.now()).toISOString(),
    };
  }
}
