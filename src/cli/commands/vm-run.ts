import { InvalidArgumentError as CommanderInvalidArgument, type Command } from 'commander';
import { resolveProfile } from '../../config/index.js';
import type { DriverName } from '../../vmm/index.js';
import type { Vm } from '../../vm/index.js';
import type { CliContext, WithContext } from '../context.js';
import { formatMs, printJson, renderTable } from '../output.js';

interface RunOptions {
  profile?: string;
  driver?: DriverName;
  vcpus?: number;
  memoryMib?: number;
  timeoutMs: number;
  json?: boolean;
}

/** Exit status for a command that timed out, as timeout(1) uses. */
const EXIT_TIMED_OUT = 124;
const EXIT_NOT_FOUND = 127;
const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15, SIGABRT: 6 };

function nonNegativeInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new CommanderInvalidArgument(`${name} must be a non-negative integer, got "${value}"`);
    return n;
  };
}

/** vCPUs and memory: 0 would silently mean "the profile's", so it is refused. */
function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new CommanderInvalidArgument(`${name} must be a positive integer, got "${value}"`);
    return n;
  };
}

/** Parsed by Commander, so a bad value is a usage error (exit 2) that Commander prints. */
function driverName(value: string): DriverName {
  if (value !== 'qemu' && value !== 'firecracker') throw new CommanderInvalidArgument(`--driver must be qemu or firecracker, got "${value}"`);
  return value;
}

export function registerVmRun(vm: Command, withContext: WithContext): void {
  vm.command('run')
    .description("boot a fresh VM, run a command in it through the agent, print its output, destroy the VM; exits with the command's exit code")
    .usage('[options] -- CMD [ARGS...]')
    .argument('<cmd...>', 'command and arguments to run in the guest')
    .option('--profile <name>', 'VM profile (default: default_profile)')
    .option('--driver <driver>', "VMM driver (qemu | firecracker; default: the profile's)", driverName)
    .option('--vcpus <n>', "vCPUs (default: the profile's)", positiveInt('--vcpus'))
    .option('--memory-mib <m>', "guest memory in MiB (default: the profile's)", positiveInt('--memory-mib'))
    .option('--timeout-ms <t>', 'kill the command after this long (0 = no limit)', nonNegativeInt('--timeout-ms'), 300_000)
    .option('--json', 'print one JSON object (output, exit code, phase timings) instead of raw output')
    .passThroughOptions()
    .action(async (cmd: string[], opts: RunOptions) => {
      process.exitCode = await withContext((ctx) => runInFreshVm(ctx, cmd, opts));
    });
}

async function runInFreshVm(ctx: CliContext, argv: string[], opts: RunOptions): Promise<number> {
  const profile = resolveProfile(ctx.config, opts.profile);
  const service = await ctx.vmService();
  const started = performance.now();
  // The overrides become part of the profile, so an "instant" profile's
  // golden snapshot is keyed by the size actually asked for.
  const sized = {
    ...profile,
    ...(opts.driver ? { driver: opts.driver } : {}),
    ...(opts.vcpus ? { vcpus: opts.vcpus } : {}),
    ...(opts.memoryMib ? { memoryMib: opts.memoryMib } : {}),
  };
  const setupPhases: Array<{ name: string; ms: number }> = [];
  let vm: Vm;
  if (sized.bootLevel === 'instant') {
    // Served as a clone of the profile's golden snapshot (made on first use).
    const lookupStarted = performance.now();
    const golden = await (await ctx.snapshots()).ensure(sized);
    setupPhases.push({ name: 'golden_snapshot', ms: round(performance.now() - lookupStarted) });
    vm = await service.restore({ profile: sized, snapshot: golden.files, image: golden.image! });
  } else {
    vm = await service.create({ profile: sized });
  }
  let result;
  let execMs = 0;
  let stopMs = 0;
  let notFound: Error | undefined;
  try {
    const execStarted = performance.now();
    try {
      result = await vm.exec({ argv, timeoutMs: opts.timeoutMs });
    } catch (err) {
      if ((err as { code?: string }).code !== 'GUEST_COMMAND_NOT_FOUND') throw err;
      notFound = err as Error;
    }
    execMs = performance.now() - execStarted;
  } finally {
    const stopStarted = performance.now();
    await service.destroy(vm, 'vm run finished');
    stopMs = performance.now() - stopStarted;
  }
  const totalMs = performance.now() - started;
  const phases = [...setupPhases, ...vm.bootPhases, { name: 'exec', ms: round(execMs) }, { name: 'stop', ms: round(stopMs) }];
  const exitCode = notFound ? EXIT_NOT_FOUND : result!.timedOut ? EXIT_TIMED_OUT : (result!.exitCode ?? 128 + (SIGNAL_NUMBERS[result!.signal ?? ''] ?? 0));

  if (opts.json) {
    printJson({
      vm_id: vm.id,
      created_by: vm.createdBy,
      driver: vm.driverName,
      accel: vm.accel,
      exit_code: exitCode,
      signal: result?.signal ?? null,
      timed_out: result?.timedOut ?? false,
      stdout: result?.stdout.toString('utf8') ?? '',
      stderr: result?.stderr.toString('utf8') ?? (notFound ? notFound.message + '\n' : ''),
      stdout_truncated: result?.stdoutTruncated ?? false,
      stderr_truncated: result?.stderrTruncated ?? false,
      ...(notFound ? { error: { code: 'GUEST_COMMAND_NOT_FOUND', message: notFound.message } } : {}),
      timings: { total_ms: round(totalMs), phases },
    });
    return exitCode;
  }
  if (result) {
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
  }
  if (notFound) process.stderr.write(`tfc: ${notFound.message}\n`);
  if (result?.timedOut) process.stderr.write(`tfc: command timed out after ${opts.timeoutMs} ms and was killed\n`);
  if (result?.stdoutTruncated || result?.stderrTruncated) process.stderr.write('tfc: output was truncated (agent output cap)\n');
  const rows = phases.map((p) => [p.name, formatMs(p.ms), `${((p.ms / totalMs) * 100).toFixed(1)}%`]);
  rows.push(['total', formatMs(totalMs), '100%']);
  process.stderr.write(
    `\nvm ${vm.id} (${vm.driverName}, ${vm.accel}, ${vm.createdBy === 'restore' ? 'restored from golden snapshot' : 'cold boot'}) exit ${exitCode}\n${renderTable(['phase', 'ms', 'share'], rows, ['left', 'right', 'right'])}\n`,
  );
  return exitCode;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
