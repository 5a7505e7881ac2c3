import type { Command } from 'commander';
import { ApiClient } from '../api-client.js';
import type { WithContext } from '../context.js';
import { formatMs, printJson, renderTable } from '../output.js';
import { registerFileCommands } from './files.js';
import { registerShellCommand, streamExec } from './shell.js';
import { hasCode } from '../../errors/index.js';

/** Daemon-backed commands: the same nouns and JSON shapes as the REST API. */
export function registerClientCommands(program: Command, vm: Command, withContext: WithContext): void {
  const pool = program.command('pool').description('warm pools of a running daemon (`tfc serve`)');
  pool
    .command('ls')
    .description('list pools with their target and counts')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const pools = await ApiClient.fromContext(ctx).listPools();
        if (opts.json) printJson({ pools });
        else
          process.stdout.write(
            renderTable(
              ['pool', 'profile', 'ready', 'booting', 'allocated', 'target', 'min', 'max', 'mode', 'strategy'],
              pools.map((p) => [p.name, p.profile, p.ready, p.booting, p.allocated, p.target, p.min, p.max, p.mode ?? '', p.strategy ?? '']),
            ) + '\n',
          );
        return 0;
      });
    });
  pool
    .command('allocate')
    .description('allocate a ready VM from a pool; prints its id')
    .argument('<name>', 'pool name')
    .option('--owner <owner>', 'owner (reuse pools keep released VMs for their owner)')
    .option('--timeout-ms <ms>', 'wait this long when the pool is empty')
    .option('--ttl-ms <ms>', "lease: the VM is destroyed or recycled this long after allocation unless kept alive (default: the pool's lease_ms)")
    .option('--json', 'print the allocation as JSON')
    .action(async (name: string, opts: { owner?: string; timeoutMs?: string; ttlMs?: string; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const body = {
          ...(opts.owner ? { owner: opts.owner } : {}),
          ...(opts.timeoutMs ? { timeout_ms: Number(opts.timeoutMs) } : {}),
          ...(opts.ttlMs ? { ttl_ms: Number(opts.ttlMs) } : {}),
        };
        const r = await ApiClient.fromContext(ctx).allocate(name, body);
        if (opts.json) printJson(r);
        else process.stdout.write(`${r.vm.id}\n`);
        if (!opts.json)
          process.stderr.write(
            `allocated ${r.vm.id} from pool ${name} in ${formatMs(r.allocation_ms)} ms${r.vm.expires_at ? `; lease until ${r.vm.expires_at} (extend: tfc vm keepalive ${r.vm.id})` : ''}\n`,
          );
        return 0;
      });
    });

  vm.command('ls')
    .description('VMs of the running daemon')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const vms = await ApiClient.fromContext(ctx).listVms();
        if (opts.json) printJson({ vms });
        else
          process.stdout.write(
            renderTable(
              ['id', 'pool', 'profile', 'state', 'allocated', 'owner', 'driver'],
              vms.map((v) => [v.id, v.pool ?? '', v.profile, v.state, v.allocated ? 'yes' : '', v.owner ?? '', `${v.driver}/${v.accel}`]),
            ) + '\n',
          );
        return 0;
      });
    });

  vm.command('get')
    .description('one VM with its boot or restore phases')
    .argument('<id>')
    .option('--json', 'print as JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const v = await ApiClient.fromContext(ctx).getVm(id);
        if (opts.json) printJson(v);
        else {
          process.stdout.write(
            `${v.id}  ${v.state}  pool ${v.pool ?? '-'}  profile ${v.profile}  ${v.driver}/${v.accel}  ${v.allocated ? `allocated${v.owner ? ` to ${v.owner}` : ''}` : ''}\n`,
          );
          if (v.network) process.stdout.write(`network: host address ${v.network.host_address}, guest ${v.network.guest_ip} (namespace ${v.network.netns})\n`);
          if (v.expires_at) process.stdout.write(`lease: until ${v.expires_at}\n`);
          if (v.error) process.stdout.write(`error: ${v.error.code}: ${v.error.message}\n`);
          process.stdout.write(
            renderTable(
              [`${v.created_by} phase`, 'ms'],
              (v.phases ?? []).map((p) => [p.name, formatMs(p.ms)]),
              ['left', 'right'],
            ) + '\n',
          );
        }
        return 0;
      });
    });

  vm.command('exec')
    .description('run a command in a daemon VM, streaming its output as it arrives; exits with its exit code')
    .usage('[options] ID -- CMD [ARGS...]')
    .argument('<id>')
    .argument('<cmd...>')
    .option('--timeout-ms <ms>', "kill the command after this long (default 30000; at most the daemon's api.max_exec_timeout_ms)")
    .option('--json', 'print the result as JSON once the command ended (no streaming)')
    .option('--base64', 'with --json: stdout and stderr as base64 of the exact bytes (output_encoding "base64")')
    .passThroughOptions()
    .action(async (id: string, cmdArgs: string[], given: ExecOptions) => {
      const { cmd, opts } = execArgs(cmdArgs, given);
      process.exitCode = await withContext(
        async (ctx) => {
          const client = ApiClient.fromContext(ctx);
          if (!opts.json) {
            try {
              return await streamExec(client, id, cmd, opts.timeoutMs && Number(opts.timeoutMs) > 0 ? Number(opts.timeoutMs) : DEFAULT_EXEC_TIMEOUT_MS);
            } catch (err) {
              // A daemon without the processes API (older, or a guest agent that cannot stream) still runs it in one shot.
              if (!(hasCode(err, 'NOT_FOUND') || (hasCode(err, 'INVALID_STATE') && err.details?.feature === 'processes'))) throw err;
            }
          }
          return oneShotExec(client, id, cmd, opts);
        },
        // No local VMs to stop: streamExec forwards Ctrl-C and SIGTERM to the guest command.
        { handleSignals: false },
      );
    });

  vm.command('keepalive')
    .description("extend an allocated VM's lease; prints the new expiry")
    .argument('<id>')
    .option('--ttl-ms <ms>', 'new lease from now (default: the TTL it was allocated with)')
    .option('--json', 'print the VM as JSON')
    .action(async (id: string, opts: { ttlMs?: string; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const v = await ApiClient.fromContext(ctx).keepalive(id, opts.ttlMs ? { ttl_ms: Number(opts.ttlMs) } : {});
        if (opts.json) printJson(v);
        else process.stdout.write(`${v.id} lease until ${v.expires_at ?? '-'}\n`);
        return 0;
      });
    });

  registerFileCommands(vm, withContext);
  registerShellCommand(vm, withContext);

  vm.command('rm')
    .description('release a daemon VM (fresh pools destroy it)')
    .argument('<id...>')
    .action(async (ids: string[]) => {
      process.exitCode = await withContext(async (ctx) => {
        const client = ApiClient.fromContext(ctx);
        for (const id of ids) await client.release(id);
        return 0;
      });
    });
}

/** The daemon's default exec timeout (docs/api.md#exec), used for streamed commands too. */
const DEFAULT_EXEC_TIMEOUT_MS = 30_000;

/** POST /v1/vms/{id}/exec: the whole output once the command ended. */
async function oneShotExec(client: ApiClient, id: string, cmd: string[], opts: ExecOptions): Promise<number> {
  // Raw output is asked for as base64 so binary output reaches stdout byte for byte.
  const base64 = !opts.json || opts.base64;
  const r = await client.exec(id, {
    cmd,
    ...(base64 ? { output_encoding: 'base64' as const } : {}),
    ...(opts.timeoutMs ? { timeout_ms: Number(opts.timeoutMs) } : {}),
  });
  if (opts.json) printJson(r);
  else {
    // The answer says how it is encoded (a daemon without output_encoding sends text).
    const encoding = r.output_encoding === 'base64' ? 'base64' : 'utf8';
    process.stdout.write(Buffer.from(r.stdout, encoding));
    process.stderr.write(Buffer.from(r.stderr, encoding));
  }
  return r.timed_out ? 124 : (r.exit_code ?? 137);
}

interface ExecOptions {
  timeoutMs?: string;
  json?: boolean;
  base64?: boolean;
}

/**
 * The guest command of `tfc vm exec`, and tfc's options. With
 * passThroughOptions everything after the id is an operand, so a `--` there
 * arrives too; options written after the id but before `--`
 * (`ID --timeout-ms 900 -- CMD`) are tfc's, not the guest's: taken here
 * when every word before the `--` is one of them, else the words are the
 * command as given (`ID ls -- -x`).
 */
export function execArgs(args: string[], given: ExecOptions): { cmd: string[]; opts: ExecOptions } {
  const sep = args.indexOf('--');
  if (sep < 0) return { cmd: args, opts: given };
  const opts: ExecOptions = { ...given };
  for (let i = 0; i < sep; i++) {
    const word = args[i];
    if (word === '--json') opts.json = true;
    else if (word === '--base64') opts.base64 = true;
    else if (word === '--timeout-ms' && i + 1 < sep) opts.timeoutMs = args[++i];
    else if (word.startsWith('--timeout-ms=')) opts.timeoutMs = word.slice('--timeout-ms='.length);
    else return { cmd: args, opts: given };
  }
  return { cmd: args.slice(sep + 1), opts };
}
