/**
 * `tfc vm shell VM`: an interactive terminal in a daemon VM (a pty process
 * through the processes API), and the streaming form of `tfc vm exec`.
 * Both start a guest process, stream its output over SSE as it arrives and
 * forward local input to its stdin; they exit with the process's exit code.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../errors/index.js';
import { ApiClient } from '../api-client.js';
import type { WithContext } from '../context.js';
import { exitCodeOf, followProcess, StdinForwarder } from '../process-stream.js';

/** bash as a login shell when the image has it, else sh. */
export const DEFAULT_SHELL_ARGV = ['/bin/sh', '-c', 'if [ -x /bin/bash ]; then exec /bin/bash -l; else exec /bin/sh -l; fi'];
const DEFAULT_SIZE = { cols: 80, rows: 24 };
const EXIT_TIMED_OUT = 124;

type Input = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

/**
 * Feeds `input` into `stdin` until stopped: pauses the source while the
 * forwarder's buffer is full; calls `onEnd` at the end of input. Returns the function that stops forwarding.
 */
function forwardInput(input: Input, stdin: StdinForwarder, onEnd: () => void): () => void {
  const onData = (chunk: Buffer | string) => {
    if (!stdin.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))) {
      input.pause();
      void stdin.whenDrained().then(() => input.resume());
    }
  };
  input.on('data', onData);
  input.once('end', onEnd);
  input.resume();
  return () => {
    input.off('data', onData);
    input.off('end', onEnd);
    input.pause();
  };
}

/** Writes to our stdout/stderr; when the pipe is full, waits for it to drain (a slow reader stops the stream, not our memory). */
function writeOut(stream: 'stdout' | 'stderr', data: Buffer): void | Promise<void> {
  const out = stream === 'stdout' ? process.stdout : process.stderr;
  if (out.write(data)) return;
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      resolve();
    };
    out.once('drain', done);
    out.once('close', done);
  });
}

function reportGap(lostBytes: number): void {
  process.stderr.write(`\ntfc: ${lostBytes} bytes of output were lost (this terminal fell behind the daemon's output log)\n`);
}

/**
 * Runs `cmd` in VM `vmId` with streamed output: stdout and stderr are
 * written as they arrive; stdin is forwarded when it is not a terminal (a
 * terminal gives the command an empty stdin, like /dev/null). After
 * `timeoutMs` the command is killed (exit 124). SIGINT and SIGTERM of this
 * process are sent on to the command. Resolves with the exit code.
 * Throws the daemon's errors (NOT_FOUND from a daemon without the processes
 * API: the caller falls back to the one-shot exec).
 */
export async function streamExec(client: ApiClient, vmId: string, cmd: string[], timeoutMs: number, input: Input = process.stdin): Promise<number> {
  const { pid } = await client.spawn(vmId, { cmd });
  const stdin = new StdinForwarder(client, vmId, pid);
  const stop = input.isTTY ? (stdin.end(), () => undefined) : forwardInput(input, stdin, () => stdin.end());
  // Ctrl-C and kill reach the guest command (which then exits and ends the stream), not just this client.
  const forward = (signal: 'SIGINT' | 'SIGTERM') => void client.signal(vmId, pid, signal).catch(() => undefined);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void client.signal(vmId, pid, 'SIGKILL').catch(() => undefined);
  }, timeoutMs);
  try {
    const exit = await followProcess(client, vmId, pid, { onOutput: writeOut, onGap: reportGap });
    if (timedOut) {
      process.stderr.write(`tfc: command timed out after ${timeoutMs} ms and was killed\n`);
      return EXIT_TIMED_OUT;
    }
    return exitCodeOf(exit);
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    clearTimeout(timer);
    stop();
    stdin.close();
  }
}

/**
 * An interactive shell: a pty process sized like the local terminal, the
 * terminal in raw mode (keys, Ctrl-C included, go to the guest as bytes),
 * resized on SIGWINCH, restored however the shell ends. Piped input works
 * line by line; its end is Ctrl-D to the shell. Resolves with the shell's exit code.
 */
export async function runShell(client: ApiClient, vmId: string, argv: string[], input: Input = process.stdin): Promise<number> {
  const out = process.stdout;
  const tty = input.isTTY === true && typeof input.setRawMode === 'function';
  const size = () => (out.isTTY && out.columns && out.rows ? { cols: out.columns, rows: out.rows } : DEFAULT_SIZE);
  const env = { TERM: process.env.TERM && process.env.TERM !== 'dumb' ? process.env.TERM : 'xterm-256color' };
  const { pid } = await client.spawn(vmId, { cmd: argv, env, pty: size() });
  const stdin = new StdinForwarder(client, vmId, pid);
  const restore = () => {
    if (tty) input.setRawMode!(false);
  };
  const onResize = () => void client.resize(vmId, pid, size()).catch(() => undefined);
  if (tty) {
    input.setRawMode!(true);
    process.once('exit', restore);
    out.on('resize', onResize);
  }
  // End of piped input: the agent gives a pty its end-of-file character (Ctrl-D), as a user typing it.
  const stop = forwardInput(input, stdin, () => stdin.end());
  try {
    const exit = await followProcess(client, vmId, pid, { onOutput: writeOut, onGap: reportGap });
    return exitCodeOf(exit);
  } finally {
    stop();
    stdin.close();
    out.off('resize', onResize);
    restore();
    process.off('exit', restore);
  }
}

/** Splits `--cmd "prog arg"` into argv (whitespace only; no shell quoting). */
export function shellArgv(cmd: string | undefined): string[] {
  if (cmd === undefined) return DEFAULT_SHELL_ARGV;
  const argv = cmd.trim().split(/\s+/).filter(Boolean);
  if (argv.length === 0) throw new InvalidArgumentError('--cmd needs a program to run, e.g. --cmd sh');
  return argv;
}

export function registerShellCommand(vm: Command, withContext: WithContext): void {
  vm.command('shell')
    .description("open an interactive terminal in a daemon VM (a pty process); exits with the shell's exit code")
    .argument('<id>')
    .option('--cmd <program>', 'program to run on the terminal, split on spaces (default: /bin/bash -l if the guest has bash, else /bin/sh -l)')
    .action(async (id: string, opts: { cmd?: string }) => {
      process.exitCode = await withContext(async (ctx) => runShell(ApiClient.fromContext(ctx), id, shellArgv(opts.cmd)));
    });
}
