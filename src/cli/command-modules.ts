/**
 * Which command modules a `tfc` invocation loads. Each module under
 * commands/ registers a few commands and statically imports what their
 * actions use (the daemon pulls in fastify and pino, image builds tar and
 * cli-progress, ...). Loading all of them costs a one-shot `tfc vm run`
 * about 200 ms of module loading on a 2-core machine, so the command words
 * of argv pick the modules; help, version and anything not recognised here
 * load every module, so Commander's help and "did you mean" stay complete.
 * Must not contain command logic.
 */
import type { Command } from 'commander';
import type { WithContext } from './context.js';

export type CommandModule =
  'doctor' | 'image' | 'config' | 'snapshot' | 'serve' | 'vm-run' | 'vm-snapshots' | 'client' | 'run' | 'bench' | 'alerts' | 'events' | 'cluster';

/** (program, the `vm` command, withContext) -> registers the module's commands. */
type Registrar = (program: Command, vm: Command, withContext: WithContext) => void;

/** Every module, in the order their commands appear in `tfc --help` (the `vm` command is created before the first vm module). */
const LOADERS: ReadonlyArray<[CommandModule, () => Promise<Registrar>]> = [
  [
    'doctor',
    async () => {
      const m = await import('./commands/doctor.js');
      return (program, _vm, withContext) => m.registerDoctor(program, withContext);
    },
  ],
  [
    'image',
    async () => {
      const m = await import('./commands/image.js');
      return (program, _vm, withContext) => m.registerImageCommands(program, withContext);
    },
  ],
  [
    'config',
    async () => {
      const m = await import('./commands/config.js');
      return (program, _vm, withContext) => m.registerConfigCommands(program, withContext);
    },
  ],
  [
    'snapshot',
    async () => {
      const m = await import('./commands/snapshot.js');
      return (program, _vm, withContext) => m.registerSnapshotCommands(program, withContext);
    },
  ],
  [
    'serve',
    async () => {
      const m = await import('./commands/serve.js');
      return (program, _vm, withContext) => m.registerServe(program, withContext);
    },
  ],
  [
    'vm-run',
    async () => {
      const m = await import('./commands/vm-run.js');
      return (_program, vm, withContext) => m.registerVmRun(vm, withContext);
    },
  ],
  [
    'vm-snapshots',
    async () => {
      const m = await import('./commands/vm-snapshots.js');
      return (_program, vm, withContext) => m.registerVmSnapshotCommands(vm, withContext);
    },
  ],
  [
    'client',
    async () => {
      const m = await import('./commands/client.js');
      return (program, vm, withContext) => m.registerClientCommands(program, vm, withContext);
    },
  ],
  [
    'run',
    async () => {
      const m = await import('./commands/run.js');
      return (program, _vm, withContext) => m.registerRunCommand(program, withContext);
    },
  ],
  [
    'bench',
    async () => {
      const m = await import('./commands/bench.js');
      return (program, _vm, withContext) => m.registerBench(program, withContext);
    },
  ],
  [
    'alerts',
    async () => {
      const m = await import('./commands/alerts.js');
      return (program, _vm, withContext) => m.registerAlertCommands(program, withContext);
    },
  ],
  [
    'events',
    async () => {
      const m = await import('./commands/events.js');
      return (program, _vm, withContext) => m.registerEventsCommand(program, withContext);
    },
  ],
  [
    'cluster',
    async () => {
      const m = await import('./commands/cluster.js');
      return (program, _vm, withContext) => m.registerClusterCommands(program, withContext);
    },
  ],
];

export const ALL_COMMAND_MODULES: readonly CommandModule[] = LOADERS.map(([name]) => name);

const VM_MODULES: readonly CommandModule[] = ['vm-run', 'vm-snapshots', 'client'];

/** Top-level command word -> module. `vm` is looked up in VM_SUBCOMMANDS. */
export const TOP_COMMANDS: Readonly<Record<string, CommandModule>> = {
  doctor: 'doctor',
  image: 'image',
  config: 'config',
  snapshot: 'snapshot',
  serve: 'serve',
  pool: 'client',
  run: 'run',
  bench: 'bench',
  alerts: 'alerts',
  events: 'events',
  cluster: 'cluster',
};

/** `tfc vm WORD` -> the module that registers `vm WORD`. */
export const VM_SUBCOMMANDS: Readonly<Record<string, CommandModule>> = {
  run: 'vm-run',
  snapshot: 'vm-snapshots',
  snapshots: 'vm-snapshots',
  rollback: 'vm-snapshots',
  fork: 'vm-snapshots',
  pause: 'vm-snapshots',
  resume: 'vm-snapshots',
  'snapshot-rm': 'vm-snapshots',
  ls: 'client',
  get: 'client',
  exec: 'client',
  keepalive: 'client',
  rm: 'client',
  files: 'client',
  shell: 'client',
};

/** Global options that take a value (they come before the command word: the program uses positional options). */
const GLOBAL_OPTIONS_WITH_VALUE = new Set(['--config']);

/**
 * The modules `args` (argv without the node binary and script) needs.
 * Pure; never throws. Every module when the command word is missing, an
 * option Commander must see (help, version, an unknown one) or not in the
 * tables: then Commander parses against the complete program.
 */
export function commandModulesFor(args: readonly string[]): readonly CommandModule[] {
  let i = 0;
  while (i < args.length) {
    const arg = args[i];
    if (GLOBAL_OPTIONS_WITH_VALUE.has(arg)) i += 2;
    else if ([...GLOBAL_OPTIONS_WITH_VALUE].some((o) => arg.startsWith(`${o}=`))) i += 1;
    else break;
  }
  const word = args[i];
  if (word === 'vm') {
    const sub = args[i + 1];
    return sub !== undefined && Object.hasOwn(VM_SUBCOMMANDS, sub) ? [VM_SUBCOMMANDS[sub]] : VM_MODULES;
  }
  return word !== undefined && Object.hasOwn(TOP_COMMANDS, word) ? [TOP_COMMANDS[word]] : ALL_COMMAND_MODULES;
}

/**
 * Loads `modules` and registers their commands on `program`, in help order.
 * The `vm` command is created only when a vm module is loaded. Throws what
 * importing a module throws (a broken install).
 */
export async function registerCommands(program: Command, withContext: WithContext, modules: readonly CommandModule[]): Promise<void> {
  const wanted = LOADERS.filter(([name]) => modules.includes(name));
  const registrars = await Promise.all(wanted.map(([, load]) => load()));
  let vm: Command | undefined;
  wanted.forEach(([name], i) => {
    if (VM_MODULES.includes(name)) vm ??= program.command('vm').description('run and manage VMs');
    // Modules outside the vm group never touch `vm`.
    registrars[i](program, vm as Command, withContext);
  });
}
