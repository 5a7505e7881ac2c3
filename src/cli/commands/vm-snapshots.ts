import { InvalidArgumentError as CommanderInvalidArgument, type Command } from 'commander';
import type { LiveSnapshotView } from '../../api/routes/snapshots.js';
import { MAX_DETACHED_LEASE_MS, MAX_FORK_COUNT } from '../../snapshot/live/index.js';
import { ApiClient } from '../api-client.js';
import type { WithContext } from '../context.js';
import { formatMs, printJson, renderTable } from '../output.js';

function forkCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_FORK_COUNT)
    throw new CommanderInvalidArgument(`--count must be an integer from 1 to ${MAX_FORK_COUNT}, got "${value}"`);
  return n;
}

function ttlMs(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_DETACHED_LEASE_MS)
    throw new CommanderInvalidArgument(`--ttl-ms must be an integer from 1 to ${MAX_DETACHED_LEASE_MS} (24 h), got "${value}"`);
  return n;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * Snapshots of running VMs, through the daemon (docs/snapshots.md):
 * `tfc vm snapshot|snapshots|rollback|fork|snapshot-rm|pause [--persist]|resume`.
 */
export function registerVmSnapshotCommands(vm: Command, withContext: WithContext): void {
  vm.command('snapshot')
    .description('snapshot a running VM (memory, device state, scratch disk); the VM keeps running; prints the snapshot id')
    .argument('<vm>', 'VM id')
    .option('--name <name>', 'keep the snapshot after the VM is gone, under this name')
    .option('--json', 'print as JSON')
    .action(async (vmId: string, opts: { name?: string; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const r = await ApiClient.fromContext(ctx).snapshot(vmId, opts.name ? { name: opts.name } : {});
        if (opts.json) printJson(r);
        else {
          process.stdout.write(`${r.snapshot_id}\n`);
          process.stderr.write(`snapshot of ${vmId}: paused ${formatMs(r.pause_ms)} ms, ${mib(r.size_bytes)}\n`);
        }
        return 0;
      });
    });

  vm.command('snapshots')
    .description('snapshots of running VMs, newest first')
    .option('--vm <id>', 'only those of this VM')
    .option('--json', 'print as JSON')
    .action(async (opts: { vm?: string; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const query = opts.vm ? `?vm_id=${encodeURIComponent(opts.vm)}` : '';
        const { snapshots } = await ApiClient.fromContext(ctx).http.json<{ snapshots: LiveSnapshotView[] }>('GET', `/v1/snapshots${query}`, { retry: true });
        if (opts.json) printJson({ snapshots });
        else
          process.stdout.write(
            renderTable(
              ['id', 'vm', 'name', 'profile', 'size', 'pause ms', 'created'],
              snapshots.map((s) => [s.id, s.vm_id, s.name ?? '', s.profile, mib(s.size_bytes), formatMs(s.pause_ms), s.created_at]),
            ) + '\n',
          );
        return 0;
      });
    });

  vm.command('rollback')
    .description('put a VM back into the state of one of its snapshots (same id, same network)')
    .argument('<vm>', 'VM id')
    .argument('<snapshot>', 'snapshot id (tfc vm snapshots)')
    .option('--json', 'print the VM as JSON')
    .action(async (vmId: string, snapshotId: string, opts: { json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const started = performance.now();
        const view = await ApiClient.fromContext(ctx).rollback(vmId, snapshotId);
        if (opts.json) printJson(view);
        else process.stderr.write(`rolled ${view.id} back to ${snapshotId} in ${formatMs(performance.now() - started)} ms\n`);
        return 0;
      });
    });

  vm.command('fork')
    .description('new VMs restored from a snapshot, each with its own network and entropy; prints their ids (end them with tfc vm rm)')
    .argument('<snapshot>', 'snapshot id')
    .requiredOption('--count <n>', `how many VMs (1..${MAX_FORK_COUNT})`, forkCount)
    .option('--ttl-ms <ms>', 'lease of each fork: destroyed this long after the fork unless kept alive (tfc vm keepalive; default 600000)', ttlMs)
    .option('--json', 'print as JSON')
    .action(async (snapshotId: string, opts: { count: number; ttlMs?: number; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const r = await ApiClient.fromContext(ctx).fork(snapshotId, opts.count, opts.ttlMs ? { ttl_ms: opts.ttlMs } : {});
        if (opts.json) printJson(r);
        else process.stdout.write(r.vms.map((v) => `${v.id}\n`).join(''));
        return 0;
      });
    });

  vm.command('pause')
    .description('pause a VM; --persist writes it to disk and frees its memory (tfc vm resume brings it back, also after the daemon restarts)')
    .argument('<vm>', 'VM id')
    .option('--persist', 'pause to disk')
    .option('--json', 'print as JSON')
    .action(async (vmId: string, opts: { persist?: boolean; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const client = ApiClient.fromContext(ctx);
        const r = opts.persist ? await client.pause(vmId, { persist: true }) : await client.pause(vmId);
        if (opts.json) printJson(r);
        else process.stderr.write(`${vmId} ${opts.persist ? 'paused to disk' : 'paused'}\n`);
        return 0;
      });
    });

  vm.command('resume')
    .description('resume a paused VM, or bring back one paused to disk')
    .argument('<vm>', 'VM id')
    .option('--ttl-ms <ms>', 'for a VM paused to disk: its lease once back (default 600000; tfc vm keepalive extends it)', ttlMs)
    .option('--json', 'print the VM as JSON')
    .action(async (vmId: string, opts: { ttlMs?: number; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const started = performance.now();
        const view = await ApiClient.fromContext(ctx).resume(vmId, opts.ttlMs ? { ttl_ms: opts.ttlMs } : {});
        if (opts.json) printJson(view);
        else process.stderr.write(`${view.id} ${view.state} after ${formatMs(performance.now() - started)} ms\n`);
        return 0;
      });
    });

  vm.command('snapshot-rm')
    .description('delete a snapshot of a running VM and its files')
    .argument('<snapshot>', 'snapshot id')
    .action(async (snapshotId: string) => {
      process.exitCode = await withContext(async (ctx) => {
        await ApiClient.fromContext(ctx).deleteSnapshot(snapshotId);
        return 0;
      });
    });
}
