/**
 * Alerts: the performance monitor. Rules (boot and restore time against
 * the profile's target, allocation p99, empty pools, allocation failure
 * ratio, VM failure rate, host memory and disk) are evaluated on a timer
 * over bounded windows filled from the event bus; alerts go pending ->
 * firing -> resolved, are stored in SQLite, published on the bus and
 * delivered to signed webhooks. Also exports the rules for Prometheus.
 * Must not import the HTTP layer, touch VMs or block a bus listener.
 */
export { AlertMonitor, DEFAULT_ALERTS_CONFIG, webhookTargets, type AlertMonitorOptions, type AlertsView } from './monitor.js';
export { AlertEvaluator, alertKey, type Alert, type AlertState, type Observation, type Transition } from './evaluator.js';
export { Measurements, type PoolCounts } from './measurements.js';
export { ALERT_RULES, RULE_DEFINITIONS, effectiveRules, profileTargetMs, breaches, type EffectiveRule, type RuleName, type Comparison } from './rules.js';
export { WebhookDispatcher, BoundedQueue, signBody, backoffMs, retryableStatus, redactUrl, type WebhookTarget, type WebhookStatus } from './webhooks.js';
export { systemHost, parseMeminfo, type HostReader } from './host.js';
export { prometheusRules, prometheusRulesYaml } from './prometheus.js';
