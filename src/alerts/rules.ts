import { ALERT_RULES } from '../config/schema.js';
import type { AlertsConfig } from '../config/types.js';

export type RuleName = (typeof ALERT_RULES)[number];
export { ALERT_RULES };

/** How a rule's value is compared with its threshold: `above` fires on value > threshold, `below` on value < threshold, `at_most` on value <= threshold. */
export type Comparison = 'above' | 'below' | 'at_most';

/** One rule of the performance monitor, with its defaults (`[alerts.rules.NAME]` overrides threshold, for_ms, enabled). */
export interface RuleDefinition {
  name: RuleName;
  comparison: Comparison;
  threshold: number;
  forMs: number;
  /** Unit of the value and the threshold, for tables and docs. */
  unit: string;
  /** The labels each alert of this rule carries. */
  labels: readonly string[];
  description: string;
}

/** The sliding window the windowed rules look at. */
export const WINDOW_MS = 5 * 60_000;
/** Fewer allocations than this in the window say nothing about a p99. */
export const MIN_P99_SAMPLES = 20;
/** Fewer allocation attempts than this in the window say nothing about a failure ratio. */
export const MIN_RATIO_ATTEMPTS = 10;
/** Boot and restore target of `sub2second` (and of restores at `instant`) when a profile sets no target_ms. */
export const SUB2SECOND_TARGET_MS = 2000;

export const RULE_DEFINITIONS: Readonly<Record<RuleName, RuleDefinition>> = {
  boot_time: {
    name: 'boot_time',
    comparison: 'above',
    threshold: 1,
    forMs: 0,
    unit: 'x target',
    labels: ['profile'],
    description: "p90 of the profile's cold boots in the last 5 minutes, as a multiple of its target (profiles.NAME.target_ms, or 2 s at sub2second)",
  },
  restore_time: {
    name: 'restore_time',
    comparison: 'above',
    threshold: 1,
    forMs: 0,
    unit: 'x target',
    labels: ['profile'],
    description:
      "p90 of the profile's snapshot restores in the last 5 minutes, as a multiple of its target (profiles.NAME.target_ms, or 2 s at sub2second and instant)",
  },
  allocation_p99: {
    name: 'allocation_p99',
    comparison: 'above',
    threshold: 20,
    forMs: 60_000,
    unit: 'ms',
    labels: ['pool'],
    description: `p99 of the pool's allocation latency over the last 5 minutes (once at least ${MIN_P99_SAMPLES} allocations were made)`,
  },
  pool_empty: {
    name: 'pool_empty',
    comparison: 'at_most',
    threshold: 0,
    forMs: 30_000,
    unit: 'ready VMs',
    labels: ['pool'],
    description: 'ready VMs of a pool whose target is above 0 (the pool cannot serve an allocation at once)',
  },
  allocation_failure_ratio: {
    name: 'allocation_failure_ratio',
    comparison: 'above',
    threshold: 0.05,
    forMs: 60_000,
    unit: 'ratio',
    labels: ['pool'],
    description: `failed allocations / all allocation requests of the pool over the last 5 minutes (once at least ${MIN_RATIO_ATTEMPTS} were made)`,
  },
  vm_failure_rate: {
    name: 'vm_failure_rate',
    comparison: 'above',
    threshold: 0.5,
    forMs: 0,
    unit: 'per minute',
    labels: ['driver'],
    description: 'VM creations (boots and restores) that failed, per minute, averaged over the last 5 minutes',
  },
  host_memory_low: {
    name: 'host_memory_low',
    comparison: 'below',
    threshold: 10,
    forMs: 60_000,
    unit: '% available',
    labels: [],
    description: "the host's available memory (MemAvailable of /proc/meminfo) as a percentage of its total",
  },
  disk_free_low: {
    name: 'disk_free_low',
    comparison: 'below',
    threshold: 10,
    forMs: 60_000,
    unit: '% free',
    labels: ['path'],
    description: 'space available to tfc on the file system of data_dir, as a percentage of its size',
  },
};

/** A rule with the config's overrides applied. */
export interface EffectiveRule extends RuleDefinition {
  enabled: boolean;
}

/** Every rule, in catalogue order, with `[alerts.rules.NAME]` applied. Pure. */
export function effectiveRules(config?: Pick<AlertsConfig, 'rules'>): EffectiveRule[] {
  return ALERT_RULES.map((name) => {
    const base = RULE_DEFINITIONS[name];
    const o = config?.rules[name] ?? {};
    return { ...base, threshold: o.threshold ?? base.threshold, forMs: o.forMs ?? base.forMs, enabled: o.enabled ?? true };
  });
}

/** True when `value` breaches `threshold` under `comparison`. */
export function breaches(comparison: Comparison, value: number, threshold: number): boolean {
  if (comparison === 'above') return value > threshold;
  if (comparison === 'below') return value < threshold;
  return value <= threshold;
}

/**
 * The boot or restore target of a profile in ms, or undefined when it has
 * none: `target_ms` when set, else 2 s for `sub2second` (boots and
 * restores) and for restores of `instant` profiles.
 */
export function profileTargetMs(profile: { bootLevel: string; targetMs?: number }, kind: 'boot' | 'restore'): number | undefined {
  if (profile.targetMs && profile.targetMs > 0) return profile.targetMs;
  if (profile.bootLevel === 'sub2second') return SUB2SECOND_TARGET_MS;
  if (profile.bootLevel === 'instant' && kind === 'restore') return SUB2SECOND_TARGET_MS;
  return undefined;
}
