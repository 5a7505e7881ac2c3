import type { Command } from 'commander';
import { prometheusRulesYaml } from '../../alerts/prometheus.js';
import { InvalidArgumentError } from '../../errors/index.js';
import { ApiClient } from '../api-client.js';
import type { WithContext } from '../context.js';
import { printJson, renderTable } from '../output.js';

/** An alert as GET /v1/alerts returns it. */
interface AlertView {
  id: string;
  rule: string;
  state: string;
  labels: Record<string, string>;
  value: number;
  threshold: number;
  summary: string;
  started_at: string;
  fired_at: string | null;
  resolved_at: string | null;
}

interface DeliveryView {
  id: string;
  webhook: string;
  event_id: number;
  event_type: string;
  status: string;
  attempts: number;
  http_status: number | null;
  error: string | null;
  latency_ms: number | null;
  finished_at: string;
}

const STATES = ['active', 'pending', 'firing', 'resolved', 'all'];

/** `{pool="default"}` style, as Prometheus shows labels; "" for none. */
export function formatLabels(labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  return keys.length === 0 ? '' : keys.map((k) => `${k}=${labels[k]}`).join(',');
}

/** HH:MM:SS of an ISO time (UTC), or "" for null. */
function clock(iso: string | null): string {
  return iso ? iso.slice(11, 19) : '';
}

/** The alerts table: what `tfc alerts` prints. */
export function renderAlerts(alerts: readonly AlertView[]): string {
  if (alerts.length === 0) return 'no alerts\n';
  return (
    renderTable(
      ['rule', 'state', 'labels', 'value', 'threshold', 'since', 'fired', 'resolved', 'summary'],
      alerts.map((a) => [
        a.rule,
        a.state,
        formatLabels(a.labels),
        a.value,
        a.threshold,
        clock(a.started_at),
        clock(a.fired_at),
        clock(a.resolved_at),
        a.summary,
      ]),
    ) + '\n'
  );
}

/** `tfc alerts`, `tfc alerts rules`, `tfc alerts deliveries` (docs/alerts.md). */
export function registerAlertCommands(program: Command, withContext: WithContext): void {
  const alerts = program
    .command('alerts')
    .description('alerts of the performance monitor of a running daemon (`tfc serve`); pending and firing unless --all or --state')
    .option('--all', 'every kept alert, resolved ones included')
    .option('--state <state>', `only alerts in this state (${STATES.join(', ')})`)
    .option('--json', 'print as JSON')
    .action(async (opts: { all?: boolean; state?: string; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const state = opts.state ?? (opts.all ? 'all' : 'active');
        if (!STATES.includes(state)) throw new InvalidArgumentError(`--state ${JSON.stringify(state)} is not one of ${STATES.join(', ')}`);
        const r = await ApiClient.fromContext(ctx).request<{ alerts: AlertView[] }>('GET', `/v1/alerts?state=${state}`);
        if (opts.json) printJson(r);
        else process.stdout.write(renderAlerts(r.alerts));
        return 0;
      });
    });
  alerts
    .command('rules')
    .description("print the monitor's rules as a Prometheus alerting rules file (YAML), with this config's thresholds and `for`")
    .action(async () => {
      process.exitCode = await withContext(async (ctx) => {
        process.stdout.write(prometheusRulesYaml(ctx.config.alerts ?? { rules: {} }, ctx.config.profiles));
        return 0;
      });
    });
  alerts
    .command('deliveries')
    .description('the webhook delivery log of a running daemon, newest first')
    .option('--limit <n>', 'at most this many (1-1000)', '50')
    .option('--json', 'print as JSON')
    .action(async (opts: { limit: string; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        if (!/^[0-9]{1,4}$/.test(opts.limit) || Number(opts.limit) < 1 || Number(opts.limit) > 1000)
          throw new InvalidArgumentError(`--limit ${JSON.stringify(opts.limit)} must be an integer from 1 to 1000`);
        const r = await ApiClient.fromContext(ctx).request<{ deliveries: DeliveryView[] }>('GET', `/v1/alerts/deliveries?limit=${opts.limit}`);
        if (opts.json) printJson(r);
        else if (r.deliveries.length === 0) process.stdout.write('no webhook deliveries\n');
        else
          process.stdout.write(
            renderTable(
              ['time', 'webhook', 'event', 'status', 'attempts', 'http', 'latency ms', 'error'],
              r.deliveries.map((d) => [
                clock(d.finished_at),
                d.webhook,
                `${d.event_type} #${d.event_id}`,
                d.status,
                d.attempts,
                d.http_status ?? '',
                d.latency_ms ?? '',
                d.error ?? '',
              ]),
            ) + '\n',
          );
        return 0;
      });
    });
}
