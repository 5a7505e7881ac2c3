/**
 * `tfc vm files ls|stat|mkdir|rm VM PATH`: guest filesystem operations of a
 * daemon VM, through the REST routes of the same names (docs/api.md,
 * "Files"). `--json` prints the route's answer unchanged. This module only
 * formats; it never talks to a VM except through the daemon.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../errors/index.js';
import { ApiClient } from '../api-client.js';
import type { WithContext } from '../context.js';
import { printJson, renderTable } from '../output.js';

const octal = (mode: number) => mode.toString(8).padStart(4, '0');
const time = (ms: number) => new Date(ms).toISOString();

export function registerFileCommands(vm: Command, withContext: WithContext): void {
  const files = vm.command('files').description('list, inspect, create and remove files in a daemon VM');

  files
    .command('ls')
    .description('list a guest directory (sorted by name; symlinks are not followed)')
    .argument('<id>')
    .argument('<path>', 'absolute path in the guest')
    .option('--max-entries <n>', 'at most this many entries (1-10000, default 10000)')
    .option('--json', 'print as JSON')
    .action(async (id: string, path: string, opts: { maxEntries?: string; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        if (opts.maxEntries !== undefined && !/^[0-9]{1,6}$/.test(opts.maxEntries)) {
          throw new InvalidArgumentError(`--max-entries must be a number from 1 to 10000, got ${JSON.stringify(opts.maxEntries)}`);
        }
        const r = await ApiClient.fromContext(ctx).listFiles(id, path, opts.maxEntries !== undefined ? { max_entries: Number(opts.maxEntries) } : {});
        if (opts.json) printJson(r);
        else {
          process.stdout.write(
            renderTable(
              ['type', 'mode', 'size', 'modified', 'name'],
              r.entries.map((e) => [e.type, octal(e.mode), e.size, time(e.mtime_ms), e.type === 'dir' ? `${e.name}/` : e.name]),
              ['left', 'left', 'right', 'left', 'left'],
            ) + '\n',
          );
          if (r.truncated) process.stderr.write(`only the first ${r.entries.length} entries are shown; raise --max-entries (at most 10000)\n`);
        }
        return 0;
      });
    });

  files
    .command('stat')
    .description('describe a guest path (a symlink is described, not followed)')
    .argument('<id>')
    .argument('<path>', 'absolute path in the guest')
    .option('--json', 'print as JSON')
    .action(async (id: string, path: string, opts: { json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const r = await ApiClient.fromContext(ctx).stat(id, path);
        if (opts.json) printJson(r);
        else
          process.stdout.write(
            `${r.path}  ${r.type}${r.symlink_target !== null ? ` -> ${r.symlink_target}` : ''}  size ${r.size}  mode ${octal(r.mode)}  uid ${r.uid}  gid ${r.gid}  modified ${time(r.mtime_ms)}\n`,
          );
        return 0;
      });
    });

  files
    .command('mkdir')
    .description('create a guest directory')
    .argument('<id>')
    .argument('<path>', 'absolute path in the guest')
    .option('-p, --parents', 'create missing parents; an existing directory is not an error')
    .option('--mode <octal>', 'permission bits, e.g. 700 (applied exactly; default 755 minus the umask)')
    .option('--json', 'print as JSON')
    .action(async (id: string, path: string, opts: { parents?: boolean; mode?: string; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        if (opts.mode !== undefined && !/^[0-7]{3,4}$/.test(opts.mode)) {
          throw new InvalidArgumentError(`--mode must be 3 or 4 octal digits (e.g. 755), got ${JSON.stringify(opts.mode)}`);
        }
        const body = { path, ...(opts.parents && { parents: true }), ...(opts.mode !== undefined && { mode: opts.mode }) };
        const r = await ApiClient.fromContext(ctx).mkdir(id, body);
        if (opts.json) printJson(r);
        else process.stderr.write(r.created ? `created ${r.path}\n` : `${r.path} already exists\n`);
        return 0;
      });
    });

  files
    .command('rm')
    .description('remove a guest file, symlink or empty directory (-r: a directory and its contents, never following symlinks)')
    .argument('<id>')
    .argument('<path>', 'absolute path in the guest')
    .option('-r, --recursive', 'remove a directory and everything in it')
    .option('--json', 'print as JSON')
    .action(async (id: string, path: string, opts: { recursive?: boolean; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const r = await ApiClient.fromContext(ctx).remove(id, path, { recursive: opts.recursive === true });
        if (opts.json) printJson(r);
        else process.stderr.write(`removed ${r.path} (${r.removed} ${r.removed === 1 ? 'entry' : 'entries'})\n`);
        return 0;
      });
    });
}
