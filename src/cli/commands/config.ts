import type { Command } from 'commander';
import { renderConfigShow, validateConfigFile } from '../../config/index.js';
import type { WithContext } from '../context.js';

export function registerConfigCommands(program: Command, withContext: WithContext): void {
  const config = program.command('config').description('validate and show configuration');

  config
    .command('validate')
    .description('check a tfc.toml; prints every problem with its line, exits 1 if any')
    .argument('<file>', 'TOML file to check')
    .action(async (file: string) => {
      const result = validateConfigFile(file);
      if (result.ok) {
        process.stdout.write(`${file}: valid\n`);
        process.exitCode = 0;
      } else {
        process.stderr.write(`tfc: ${result.error.message}\n`);
        process.exitCode = 1;
      }
    });

  config
    .command('show')
    .description('print the effective configuration and where each value came from')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        process.stdout.write(renderConfigShow(ctx.loaded, opts.json ? 'json' : 'toml'));
        return 0;
      });
    });
}
