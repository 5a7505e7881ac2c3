/**
 * The `tfc` command line. Commands here are local (they work without a
 * daemon); later the daemon-backed commands become thin API clients using
 * the same nouns and JSON shapes. This module maps errors to messages and
 * exit codes and must not contain VM logic.
 */
import { Command, CommanderError } from 'commander';
import { TfcError } from '../errors/index.js';
import { commandModulesFor, registerCommands } from './command-modules.js';
import type { GlobalOptions, WithContext } from './context.js';

const VERSION = '0.1.0';

/** Exit codes for tfc's own failures (a `vm run` otherwise exits with the guest command's code). */
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;

/** Runs the CLI with `argv` (as process.argv); resolves with the exit code. Never throws. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('tfc')
    .description('terraphim-firecracker: isolated, ready-to-use Linux microVMs')
    .version(VERSION)
    .option('--config <file>', 'config file (default: $TFC_CONFIG, then ./tfc.toml, then built-in defaults)')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  const withContext: WithContext = async (fn, options = {}) => {
    const global = program.opts<GlobalOptions>();
    // Loaded on first use: help and usage errors need neither the config nor the runtime.
    const { CliContext } = await import('./context.js');
    const ctx = new CliContext(global);
    // Ctrl-C or a kill must not leave a VM behind. Commands that handle
    // signals themselves (serve) opt out.
    const onSignal = (signal: NodeJS.Signals) => {
      process.stderr.write(`\ntfc: ${signal}, stopping VMs...\n`);
      void ctx.close().finally(() => process.exit(EXIT_INTERRUPTED));
    };
    if (options.handleSignals !== false) {
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    }
    try {
      return await fn(ctx, global);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await ctx.close();
    }
  };

  try {
    // Only the modules of the command being run (all of them for help and unknown words;
    // none for a bare `--version`, which loading them all made cost about 0.75 s of CPU).
    const args = argv.slice(2);
    const versionOnly = args.length === 1 && (args[0] === '--version' || args[0] === '-V');
    await registerCommands(program, withContext, versionOnly ? [] : commandModulesFor(args));
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err);
  }
}

function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // Commander already printed its message (help, version, usage errors).
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    return EXIT_USAGE;
  }
  if (err instanceof TfcError) {
    process.stderr.write(`tfc: error ${err.code}: ${err.message}\n`);
    return EXIT_ERROR;
  }
  process.stderr.write(`tfc: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  return EXIT_ERROR;
}
