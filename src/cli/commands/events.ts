import { once } from 'node:events';
import type { Command } from 'commander';
import { DAEMON_EVENT_TYPES, type DaemonEventType, type EventStreamItem } from '../../client/index.js';
import { InvalidArgumentError } from '../../errors/index.js';
import { ApiClient } from '../api-client.js';
import type { WithContext } from '../context.js';
import { formatMs } from '../output.js';

/** `tfc events`: follows GET /v1/events (docs/events.md), one line per event, resuming across dropped connections. */
export function registerEventsCommand(program: Command, withContext: WithContext): void {
  program
    .command('events')
    .description("follow the daemon's events (VM state changes, allocations, releases, pool counts, alerts), one line each, until Ctrl-C")
    .option('--types <list>', `only these types, comma-separated: ${DAEMON_EVENT_TYPES.join(', ')}`)
    .option('--last-event-id <id>', 'start after this event id (0: everything the daemon still holds) instead of from now')
    .option('--count <n>', 'exit after this many events')
    .option('--json', 'one JSON object per line, as the API sends it')
    .action(async (opts: EventsCommandOptions) => {
      process.exitCode = await withContext(
        async (ctx) => {
          const parsed = parseOptions(opts);
          const stop = new AbortController();
          const onSignal = () => stop.abort(new Error('interrupted'));
          process.once('SIGINT', onSignal);
          process.once('SIGTERM', onSignal);
          let printed = 0;
          try {
            const events = ApiClient.fromContext(ctx).events({
              ...(parsed.types ? { types: parsed.types } : {}),
              ...(parsed.lastEventId !== undefined ? { lastEventId: parsed.lastEventId } : {}),
              signal: stop.signal,
            });
            for await (const item of events) {
              const line = opts.json ? JSON.stringify(item) : describeEvent(item);
              if (!process.stdout.write(`${line}\n`)) await once(process.stdout, 'drain');
              if (++printed === parsed.count) break;
            }
            return 0;
          } catch (err) {
            // Ctrl-C is how a follow ends: no error message.
            if (stop.signal.aborted) return 130;
            throw err;
          } finally {
            process.off('SIGINT', onSignal);
            process.off('SIGTERM', onSignal);
          }
        },
        // No local VMs: the signal only ends the stream.
        { handleSignals: false },
      );
    });
}

interface EventsCommandOptions {
  types?: string;
  lastEventId?: string;
  count?: string;
  json?: boolean;
}

/** Validated options; throws InvalidArgumentError naming the option and what it takes. */
function parseOptions(opts: EventsCommandOptions): { types?: DaemonEventType[]; lastEventId?: number; count?: number } {
  const out: { types?: DaemonEventType[]; lastEventId?: number; count?: number } = {};
  // Type names are checked by the daemon, which may know newer ones.
  if (opts.types !== undefined) out.types = opts.types.split(',').map((t) => t.trim()) as DaemonEventType[];
  if (opts.lastEventId !== undefined) {
    if (!/^[0-9]{1,15}$/.test(opts.lastEventId))
      throw new InvalidArgumentError(`--last-event-id takes an event id (0 or more), got ${JSON.stringify(opts.lastEventId)}`);
    out.lastEventId = Number(opts.lastEventId);
  }
  if (opts.count !== undefined) {
    if (!/^[1-9][0-9]{0,8}$/.test(opts.count))
      throw new InvalidArgumentError(`--count takes a number of events (1 or more), got ${JSON.stringify(opts.count)}`);
    out.count = Number(opts.count);
  }
  return out;
}

/** One line for a person: time, id, type, then what happened. */
export function describeEvent(item: EventStreamItem): string {
  switch (item.type) {
    case 'gap':
      return `${' '.repeat(24)}  ${item.id}  gap  missed ${item.missed} events: the daemon no longer holds them`;
    case 'reset':
      return `${' '.repeat(24)}  ${item.id}  reset  the daemon restarted; continuing after its event ${item.last_id}`;
  }
  const head = `${item.time}  ${item.id}  ${item.type}  `;
  switch (item.type) {
    case 'vm.state':
      return head + `${item.data.vm_id} ${item.data.from} -> ${item.data.to}${item.data.reason ? ` (${item.data.reason})` : ''}`;
    case 'vm.ready':
      return head + `${item.data.vm_id} ready in ${formatMs(item.data.ms)} ms (${item.data.kind}, profile ${item.data.profile}, ${item.data.driver})`;
    case 'vm.failed':
      return head + `${item.data.driver}: ${item.data.code}`;
    case 'allocation':
      return head + `pool ${item.data.pool}: ${item.data.vm_id} in ${formatMs(item.data.ms)} ms`;
    case 'allocation.failed':
      return head + `pool ${item.data.pool}: ${item.data.code} after ${formatMs(item.data.ms)} ms`;
    case 'release':
      return head + `pool ${item.data.pool}: ${item.data.vm_id} (${item.data.reason})`;
    case 'pool':
      return (
        head + `pool ${item.data.pool}: ready ${item.data.ready}, booting ${item.data.booting}, allocated ${item.data.allocated}, target ${item.data.target}`
      );
    case 'alert':
      return head + `${item.data.state} ${item.data.rule}: ${item.data.summary}`;
  }
}
