import { InvalidArgumentError as CommanderInvalidArgument, type Command } from 'commander';
import { resolveProfile } from '../../config/index.js';
import type { DriverName } from '../../vmm/index.js';
import type { ExecResult } from '../../guest/agent-types.js';
import type { Vm } from '../../vm/index.js';
import type { CliContext, WithContext } from '../context.js';
import { formatMs, printJson, renderTable } from '../output.js';

export interface RunOptions {
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

/**
 * `tfc vm run`: a fresh VM (a clone of the golden snapshot at the `instant`
 * level, else a cold boot), the command, its answer, the teardown; resolves
 * with the exit code once the VM is gone. Without --json the command's
 * output and the `vm ID (...) exit N` line are written before the teardown,
 * the phase table after it. Throws what creating the VM throws, and agent
 * errors other than GUEST_COMMAND_NOT_FOUND (after destroying the VM).
 */
export async function runInFreshVm(ctx: Pick<CliContext, 'config' | 'vmService' | 'snapshots'>, argv: string[], opts: RunOptions): Promise<number> {
  const profile = resolveProfile(ctx.config, opts.profile);
  // The overrides become part of the profile, so an "instant" profile's
  // golden snapshot is keyed by the size actually asked for.
  const sized = {
    ...profile,
    ...(opts.driver ? { driver: opts.driver } : {}),
    ...(opts.vcpus ? { vcpus: opts.vcpus } : {}),
    ...(opts.memoryMib ? { memoryMib: opts.memoryMib } : {}),
  };
  // The driver's probe (its binary's `--version`) runs while the runtime loads.
  const service = await ctx.vmService({ probe: [sized.driver] });
  // performance.now() counts from process start: Node, modules, config, runtime.
  const started = performance.now();
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
  let answer: Answer | undefined;
  let execMs = 0;
  let answeredAt = 0;
  let stopMs = 0;
  try {
    const execStarted = performance.now();
    answer = await runCommand(vm, argv, opts.timeoutMs);
    execMs = performance.now() - execStarted;
    // The answer goes out before the VM is torn down; the process still
    // exits only after teardown (a --json object carries the stop phase, so
    // it waits for it).
    if (!opts.json) {
      survivePipeErrors();
      writeAnswer(vm, answer, opts.timeoutMs);
    }
    answeredAt = performance.now();
  } finally {
    const stopStarted = performance.now();
    await service.destroy(vm, 'vm run finished');
    stopMs = performance.now() - stopStarted;
  }
  const totalMs = performance.now() - started;
  const phases = [...setupPhases, ...vm.bootPhases, { name: 'exec', ms: round(execMs) }, { name: 'stop', ms: round(stopMs) }];
  const { result, notFound, exitCode } = answer;

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
      // startup_ms: from process start to the first phase (Node, modules, config, store, drivers).
      timings: { total_ms: round(totalMs), startup_ms: round(started), phases },
    });
    return exitCode;
  }
  const rows = phases.map((p) => [p.name, formatMs(p.ms), `${((p.ms / totalMs) * 100).toFixed(1)}%`]);
  rows.push(['total', formatMs(totalMs), '100%']);
  process.stderr.write(
    `${renderTable(['phase', 'ms', 'share'], rows, ['left', 'right', 'right'])}\n` +
      `answered ${formatMs(answeredAt)} ms after process start; VM torn down ${formatMs(performance.now() - answeredAt)} ms later\n`,
  );
  return exitCode;
}

/** What the guest command did: its result, or that it does not exist; and the exit code `vm run` exits with. */
interface Answer {
  result?: ExecResult;
  notFound?: Error;
  exitCode: number;
}

async function runCommand(vm: Vm, argv: string[], timeoutMs: number): Promise<Answer> {
  let result: ExecResult;
  try {
    result = await vm.exec({ argv, timeoutMs });
  } catch (err) {
    if ((err as { code?: string }).code !== 'GUEST_COMMAND_NOT_FOUND') throw err;
    return { notFound: err as Error, exitCode: EXIT_NOT_FOUND };
  }
  const exitCode = result.timedOut ? EXIT_TIMED_OUT : (result.exitCode ?? 128 + (SIGNAL_NUMBERS[result.signal ?? ''] ?? 0));
  return { result, exitCode };
}

let pipeErrorsIgnored = false;

/**
 * A reader that went away (`tfc vm run ... | head -c 1`: EPIPE) must not end
 * the process with an unhandled 'error' event while its VM is still being
 * torn down, which would leave the run directory and the store row behind.
 * The output had nowhere to go, so the error is dropped. Once per process.
 */
function survivePipeErrors(): void {
  if (pipeErrorsIgnored) return;
  pipeErrorsIgnored = true;
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
}

/** The command's output and a one-line summary (the phase table follows after teardown). */
function writeAnswer(vm: Vm, answer: Answer, timeoutMs: number): void {
  const { result, notFound, exitCode } = answer;
  if (result) {
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
  }
  if (notFound) process.stderr.write(`tfc: ${notFound.message}\n`);
  if (result?.timedOut) process.stderr.write(`tfc: command timed out after ${timeoutMs} ms and was killed\n`);
  if (result?.stdoutTruncated || result?.stderrTruncated) process.stderr.write('tfc: output was truncated (agent output cap)\n');
  process.stderr.write(
    `\nvm ${vm.id} (${vm.driverName}, ${vm.accel}, ${vm.createdBy === 'restore' ? 'restored from golden snapshot' : 'cold boot'}) exit ${exitCode}\n`,
  );
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
