import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { ALL_COMMAND_MODULES, commandModulesFor, registerCommands, TOP_COMMANDS, VM_SUBCOMMANDS, type CommandModule } from './command-modules.js';
import type { WithContext } from './context.js';

const noContext: WithContext = () => Promise.reject(new Error('not run in this test'));

async function programWith(modules: readonly CommandModule[]): Promise<Command> {
  const program = new Command('tfc').enablePositionalOptions();
  await registerCommands(program, noContext, modules);
  return program;
}

const names = (command: Command | undefined) => (command?.commands ?? []).map((c) => c.name());

describe('commandModulesFor', () => {
  it('loads only vm-run for `tfc vm run`, also after --config', () => {
    expect(commandModulesFor(['vm', 'run', '--', 'true'])).toEqual(['vm-run']);
    expect(commandModulesFor(['--config', 'x.toml', 'vm', 'run', '--profile', 'p', '--', 'true'])).toEqual(['vm-run']);
    expect(commandModulesFor(['--config=x.toml', 'vm', 'run', '--', 'true'])).toEqual(['vm-run']);
  });

  it('picks one module per known command word', () => {
    expect(commandModulesFor(['serve'])).toEqual(['serve']);
    expect(commandModulesFor(['pool', 'ls'])).toEqual(['client']);
    expect(commandModulesFor(['vm', 'fork', 'snap-1'])).toEqual(['vm-snapshots']);
    expect(commandModulesFor(['vm', 'shell', 'vm-1'])).toEqual(['client']);
  });

  it('loads every vm module for `tfc vm` alone, vm help and unknown vm words', () => {
    for (const args of [['vm'], ['vm', '--help'], ['vm', 'runn']]) expect(commandModulesFor(args)).toEqual(['vm-run', 'vm-snapshots', 'client']);
  });

  it('loads everything for help, version, unknown options and unknown words', () => {
    for (const args of [[], ['--help'], ['-V'], ['help', 'vm'], ['--bogus', 'vm', 'run'], ['nope'], ['--config'], ['constructor']]) {
      expect(commandModulesFor(args)).toEqual(ALL_COMMAND_MODULES);
    }
  });
});

describe('registerCommands', () => {
  it('the module each table names registers that command', async () => {
    for (const [word, module] of Object.entries(TOP_COMMANDS)) expect(names(await programWith([module]))).toContain(word);
    for (const [word, module] of Object.entries(VM_SUBCOMMANDS)) {
      const vm = (await programWith([module])).commands.find((c) => c.name() === 'vm');
      expect(names(vm)).toContain(word);
    }
  });

  it('the tables cover every command of the full program, so none loads more than it needs', async () => {
    const full = await programWith(ALL_COMMAND_MODULES);
    const hint = 'a command was added or moved: list it in TOP_COMMANDS or VM_SUBCOMMANDS (src/cli/command-modules.ts)';
    expect(names(full).sort(), hint).toEqual([...Object.keys(TOP_COMMANDS), 'vm'].sort());
    expect(names(full.commands.find((c) => c.name() === 'vm')).sort(), hint).toEqual(Object.keys(VM_SUBCOMMANDS).sort());
  });

  it('keeps the help order of the full program', async () => {
    expect(names(await programWith(ALL_COMMAND_MODULES))).toEqual([
      'doctor',
      'image',
      'config',
      'snapshot',
      'serve',
      'vm',
      'pool',
      'run',
      'bench',
      'alerts',
      'events',
      'cluster',
    ]);
  });
});
