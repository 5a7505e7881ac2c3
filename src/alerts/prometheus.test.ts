import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createMetrics } from '../metrics/index.js';
import { prometheusRules, prometheusRulesYaml, promDuration } from './prometheus.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const registry = createMetrics(() => []).registry;
/** Series Prometheus itself makes (not ours). */
const PROMETHEUS_BUILTINS = new Set(['ALERTS', 'ALERTS_FOR_STATE']);

/** Metric names an expression uses: identifiers followed by `{`, `[`, `)` or an operator, minus functions, keywords and labels. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"[^"]*"/g, '""');
  const withoutGroupings = withoutStrings.replace(/\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = [...withoutGroupings.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)].map((m) => m[0]);
  const notMetrics = new Set([
    'histogram_quantile',
    'sum',
    'rate',
    'increase',
    'and',
    'or',
    'unless',
    'label_values',
    'le',
    'pool',
    'kind',
    'profile',
    'phase',
    'driver',
  ]);
  return names.filter((n) => !notMetrics.has(n) && !n.startsWith('__') && !/^\d/.test(n) && (n.startsWith('tfc_') || PROMETHEUS_BUILTINS.has(n)));
}

/** True when `name` (possibly a histogram's _bucket/_sum/_count series) is in the metrics registry. */
function registered(name: string): boolean {
  if (PROMETHEUS_BUILTINS.has(name)) return true;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  const metric = registry.getSingleMetric(name) ?? registry.getSingleMetric(base);
  return metric !== undefined;
}

describe('Prometheus rules export', () => {
  const profiles = { minimal: { bootLevel: 'standard' }, lean: { bootLevel: 'sub2second' }, py: { bootLevel: 'instant', targetMs: 500 } } as const;

  it('prints a rules file with the configured thresholds and `for`, over metrics that exist', () => {
    const text = prometheusRulesYaml(
      { rules: { allocation_p99: { threshold: 15, forMs: 90_000 }, pool_empty: { forMs: 1500 }, vm_failure_rate: { enabled: false } } },
      profiles,
    );
    const doc = parse(text) as { groups: Array<{ name: string; rules: Array<{ alert: string; expr: string; for: string; labels: Record<string, string> }> }> };
    const rules = doc.groups[0].rules;
    const byName = Object.fromEntries(rules.map((r) => [r.alert, r]));
    expect(byName.TfcAllocationP99.expr).toBe('histogram_quantile(0.99, sum by (le, pool) (rate(tfc_allocation_seconds_bucket[5m]))) > 0.015');
    expect(byName.TfcAllocationP99.for).toBe('90s');
    expect(byName.TfcPoolEmpty).toMatchObject({ for: '1500ms', labels: { rule: 'pool_empty', severity: 'warning' } });
    expect(byName.TfcVmFailureRate).toBeUndefined();
    // Boot and restore: one rule per profile with a target (target x threshold, in seconds).
    expect(
      Object.keys(byName)
        .filter((n) => /Time/.test(n))
        .sort(),
    ).toEqual(['TfcBootTimeLean', 'TfcBootTimePy', 'TfcRestoreTimeLean', 'TfcRestoreTimePy']);
    expect(byName.TfcRestoreTimePy.expr).toMatch(/kind="restore",profile="py".* > 0\.5$/);
    expect(text).toMatch(/^# .*not exported: allocation_failure_ratio/m);
    for (const r of rules) for (const name of metricNames(r.expr)) expect(registered(name), `${r.alert}: ${name}`).toBe(true);
    expect(rules.flatMap((r) => metricNames(r.expr)).length).toBeGreaterThan(5);
  });

  it('writes durations as Prometheus does', () => {
    expect([0, 1000, 30_000, 1500].map(promDuration)).toEqual(['0s', '1s', '30s', '1500ms']);
    expect(prometheusRules({ rules: {} }, {}).skipped.map((s) => s.rule)).toEqual(['allocation_failure_ratio', 'host_memory_low', 'disk_free_low']);
  });
});

describe('deploy/grafana/tfc-dashboard.json', () => {
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', 'tfc-dashboard.json'), 'utf8')) as {
    uid: string;
    panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>;
    templating: { list: Array<{ definition?: string }> };
  };
  const exprs = [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dashboard.templating.list.flatMap((v) => (v.definition ? [v.definition] : [])),
  ];

  it('uses only metrics the daemon exports (so it cannot rot)', () => {
    const names = new Set(exprs.flatMap(metricNames));
    const missing = [...names].filter((n) => !registered(n));
    expect(missing).toEqual([]);
    for (const wanted of [
      'tfc_allocation_seconds_bucket',
      'tfc_vm_phase_seconds_bucket',
      'tfc_pool_ready',
      'tfc_pool_target',
      'tfc_vm_create_failures_total',
      'ALERTS',
    ])
      expect(names).toContain(wanted);
  });

  it('has a panel per topic, each with a query', () => {
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    expect(panels.length).toBeGreaterThanOrEqual(8);
    for (const p of panels) expect(p.targets?.length, p.title).toBeGreaterThan(0);
    expect(dashboard.uid).toBe('tfc-overview');
  });

  it('checks names for real: an unknown metric is caught', () => {
    expect(metricNames('rate(tfc_no_such_metric_total[5m])').filter((n) => !registered(n))).toEqual(['tfc_no_such_metric_total']);
  });
});
