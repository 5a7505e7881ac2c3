import { randomUUID } from 'node:crypto';
import { breaches, type EffectiveRule, type RuleName } from './rules.js';

export type AlertState = 'pending' | 'firing' | 'resolved';

/** One alert: a rule breached for one label set, from pending to resolved. */
export interface Alert {
  id: string;
  rule: RuleName;
  labels: Record<string, string>;
  state: AlertState;
  /** The last value measured while it was active (at resolution: the value that cleared it, when there was one). */
  value: number;
  threshold: number;
  summary: string;
  /** When the breach was first seen (ms since the epoch). */
  startedAt: number;
  firedAt: number | null;
  resolvedAt: number | null;
}

/** A measurement of one rule for one label set, made at one evaluation. */
export interface Observation {
  rule: RuleName;
  labels: Record<string, string>;
  value: number;
  /** The threshold it is judged against (the rule's, or one derived from it such as a profile target). */
  threshold: number;
  /** One line for people: what was measured against what. */
  summary: string;
}

export interface Transition {
  alert: Alert;
  from: 'inactive' | AlertState;
}

/** Stable key of a rule and label set. */
export function alertKey(rule: string, labels: Record<string, string>): string {
  return `${rule}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',')}}`;
}

/**
 * The alert state machine, Prometheus-style: a breach makes an alert
 * pending; held for the rule's `for`, it fires; when the breach ends (or
 * its measurement disappears) a pending or firing alert is resolved. A rule
 * with `for` 0 fires at once. Pure apart from ids: time comes in as `now`.
 */
export class AlertEvaluator {
  private readonly active = new Map<string, Alert>();

  constructor(private rules: ReadonlyMap<RuleName, EffectiveRule>) {}

  /** Pending and firing alerts, oldest first. */
  list(): Alert[] {
    return [...this.active.values()].map((a) => ({ ...a, labels: { ...a.labels } }));
  }

  /**
   * Applies one evaluation's observations at `now` and returns the
   * transitions, each alert a copy. Alerts of disabled rules and alerts not
   * observed this time resolve.
   */
  evaluate(now: number, observations: readonly Observation[]): Transition[] {
    const out: Transition[] = [];
    const seen = new Set<string>();
    for (const o of observations) {
      const rule = this.rules.get(o.rule);
      if (!rule?.enabled) continue;
      const key = alertKey(o.rule, o.labels);
      const breach = breaches(rule.comparison, o.value, o.threshold);
      const current = this.active.get(key);
      if (!breach) {
        if (current) out.push(this.resolve(key, current, now, o));
        continue;
      }
      seen.add(key);
      if (!current) {
        const alert: Alert = {
          id: randomUUID(),
          rule: o.rule,
          labels: { ...o.labels },
          state: rule.forMs === 0 ? 'firing' : 'pending',
          value: o.value,
          threshold: o.threshold,
          summary: o.summary,
          startedAt: now,
          firedAt: rule.forMs === 0 ? now : null,
          resolvedAt: null,
        };
        this.active.set(key, alert);
        out.push({ alert: { ...alert, labels: { ...alert.labels } }, from: 'inactive' });
        continue;
      }
      Object.assign(current, { value: o.value, threshold: o.threshold, summary: o.summary });
      if (current.state === 'pending' && now - current.startedAt >= rule.forMs) {
        current.state = 'firing';
        current.firedAt = now;
        out.push({ alert: { ...current, labels: { ...current.labels } }, from: 'pending' });
      }
    }
    for (const [key, alert] of this.active) if (!seen.has(key)) out.push(this.resolve(key, alert, now));
    return out;
  }

  /** Replaces the rules (a disabled rule's alerts resolve at the next evaluation). */
  setRules(rules: ReadonlyMap<RuleName, EffectiveRule>): void {
    this.rules = rules;
  }

  private resolve(key: string, alert: Alert, now: number, cleared?: Observation): Transition {
    this.active.delete(key);
    const from = alert.state;
    const summary = cleared ? cleared.summary : `${alert.summary} (no longer measured)`;
    const resolved: Alert = {
      ...alert,
      labels: { ...alert.labels },
      state: 'resolved',
      resolvedAt: now,
      summary,
      ...(cleared ? { value: cleared.value } : {}),
    };
    return { alert: resolved, from };
  }
}
