import type { Command } from 'commander';
import { resolveProfile } from '../../config/index.js';
import type { WithContext } from '../context.js';
import { formatMs, printJson, renderTable } from '../output.js';

export function registerSnapshotCommands(program: Command, withContext: WithContext): void {
  const snapshot = program.command('snapshot').description('golden snapshots: one cold boot per profile, then copy-on-write clones');

  snapshot
    .command('create')
    .description('create (or find) the golden snapshot of a profile for the current image and driver')
    .option('--profile <name>', 'profile (default: default_profile)')
    .option('--force', 'recreate even if a current snapshot exists')
    .option('--json', 'print the manifest as JSON')
    .action(async (opts: { profile?: string; force?: boolean; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const profile = resolveProfile(ctx.config, opts.profile);
        const snap = await (await ctx.snapshots()).ensure(profile, { force: opts.force });
        if (opts.json) printJson({ dir: snap.dir, ...snap.manifest });
        else {
          const total = snap.manifest.create_phases.reduce((a, p) => a + p.ms, 0);
          process.stdout.write(
            `snapshot ${snap.manifest.key.slice(0, 16)} of profile ${profile.name} (${snap.manifest.driver} ${snap.manifest.driver_version}, ${snap.manifest.accel}); made in ${formatMs(total)} ms\n  ${snap.dir}\n`,
          );
        }
        return 0;
      });
    });

  snapshot
    .command('ls')
    .description('list golden snapshots')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const list = (await ctx.snapshotCatalog()).list();
        if (opts.json) printJson(list.map((s) => ({ dir: s.dir, stale: s.image === null, ...s.manifest })));
        else if (list.length === 0) process.stdout.write('no snapshots; create one with `tfc snapshot create`\n');
        else {
          const mib = (b: number) => (b / 1048576).toFixed(1);
          process.stdout.write(
            renderTable(
              ['key', 'profile', 'driver', 'image', 'memory MiB', 'state KiB', 'created', 'stale'],
              list.map((s) => [
                s.manifest.key.slice(0, 16),
                s.manifest.profile,
                `${s.manifest.driver} ${s.manifest.driver_version}`,
                s.manifest.image_digest.slice(0, 12),
                mib(s.manifest.files.memory.size_bytes),
                (s.manifest.files.state.size_bytes / 1024).toFixed(0),
                s.manifest.created_at,
                s.image === null ? 'yes (image rebuilt)' : '',
              ]),
            ) + '\n',
          );
        }
        return 0;
      });
    });

  snapshot
    .command('rm')
    .description('remove snapshots by key prefix (>= 4 characters) or profile name')
    .argument('<key-or-profile>')
    .option('--json', 'print what was removed as JSON')
    .action(async (which: string, opts: { json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const removed = (await ctx.snapshotCatalog()).remove(which);
        if (opts.json) printJson(removed);
        else for (const m of removed) process.stdout.write(`removed ${m.key.slice(0, 16)} (${m.profile})\n`);
        return 0;
      });
    });
}
