/**
 * Background processes against the real agent (compiled with gcc from
 * src/agent) over --unix: spawn, streamed output and exit events, stdin,
 * signals, ptys, limits, and requests answered while processes stream or
 * an exec runs. Commands run on the host, as the test user.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestCommandNotFoundError, InvalidArgumentError, InvalidStateError, ProcessNotFoundError, TfcError, VmBusyError } from '../errors/index.js';
import { AgentClient, connectUnix, type AgentProcessEvent } from './agent-client.js';
import { PROC_MAX_LIVE, PROC_STDIN_MAX_BYTES } from './agent-protocol.js';

const AGENT_SOURCE_DIR = fileURLToPath(new URL('../agent/', import.meta.url));
const hasGcc = spawnSync('gcc', ['--version']).status === 0;
const hasStty = spawnSync('stty', ['--version']).status === 0;
if (!hasGcc) console.warn('skipping agent process tests: gcc is not installed (apt-get install gcc libc6-dev)');

let dir = '';
let agentBinary = '';
const children = new Set<ChildProcess>();
const clients = new Set<AgentClient>();

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

async function startAgent(name: string): Promise<string> {
  const socketPath = join(dir, `${name}.sock`);
  const child = spawn(agentBinary, ['--unix', socketPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  await new Promise<void>((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`agent did not get ready: ${stderr}`)), 10_000);
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (stderr.includes('tfc-agent: ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`agent exited with ${code}: ${stderr}`)));
  });
  return socketPath;
}

async function connect(socketPath: string): Promise<AgentClient> {
  const client = await connectUnix(socketPath, { timeoutMs: 5_000 });
  clients.add(client);
  await client.hello();
  return client;
}

/** Collects the events of one pid; `until` waits for a condition on what arrived so far. */
class Recorder {
  readonly events: AgentProcessEvent[] = [];
  private wake: (() => void) | undefined;
  readonly stop: () => void;

  constructor(
    client: AgentClient,
    private pid = 0,
  ) {
    this.stop = client.onProcessEvent((e) => {
      if (this.pid === 0 || e.pid === this.pid) this.events.push(e);
      this.wake?.();
    });
  }

  /** Keeps only events of `pid` (those already received included). */
  only(pid: number): this {
    this.pid = pid;
    this.events.splice(0, this.events.length, ...this.events.filter((e) => e.pid === pid));
    return this;
  }

  text(type: 'stdout' | 'stderr'): string {
    return Buffer.concat(this.events.flatMap((e) => (e.type === type ? [e.data] : []))).toString();
  }

  get exit(): Extract<AgentProcessEvent, { type: 'exit' }> | undefined {
    return this.events.find((e) => e.type === 'exit') as Extract<AgentProcessEvent, { type: 'exit' }> | undefined;
  }

  async until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}; events: ${JSON.stringify(this.events.map((e) => (e.type === 'exit' ? e : { ...e, data: e.data.toString() })))}`,
        );
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  waitExit(timeoutMs?: number): Promise<Extract<AgentProcessEvent, { type: 'exit' }>> {
    return this.until('the exit event', () => this.exit !== undefined, timeoutMs).then(() => this.exit!);
  }
}

async function agentCode(promise: Promise<unknown>): Promise<{ err: TfcError; code: unknown }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TfcError);
  return { err: err as TfcError, code: (err as TfcError).details?.agent_code };
}

describe.skipIf(!hasGcc)('agent background processes over --unix', () => {
  let client: AgentClient;
  let socketPath = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-agent-proc-'));
    agentBinary = join(dir, 'tfc-agent');
    const sources = readdirSync(AGENT_SOURCE_DIR)
      .filter((f) => f.endsWith('.c'))
      .map((f) => join(AGENT_SOURCE_DIR, f));
    const gcc = spawnSync('gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', agentBinary, ...sources], { encoding: 'utf8' });
    if (gcc.status !== 0) throw new Error(`gcc failed:\n${gcc.stderr}`);
    socketPath = await startAgent('main');
    client = await connect(socketPath);
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited(child);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('advertises the processes and pty features in hello', async () => {
    expect((await client.hello()).features).toEqual(expect.arrayContaining(['processes', 'pty']));
    expect(client.supportsProcesses).toBe(true);
  });

  it('streams stdout and stderr in order, then the exit with its code', async () => {
    const rec = new Recorder(client);
    const { pid } = await client.spawn({ argv: ['sh', '-c', 'for i in $(seq 1 200); do echo line$i; done; echo oops >&2; exit 3'] });
    rec.only(pid);
    const exit = await rec.waitExit();
    rec.stop();
    expect(rec.text('stdout')).toBe(Array.from({ length: 200 }, (_, i) => `line${i + 1}\n`).join(''));
    expect(rec.text('stderr')).toBe('oops\n');
    expect(rec.events.at(-1)).toBe(exit);
    expect(rec.events.filter((e) => e.type === 'exit')).toHaveLength(1);
    expect(exit).toMatchObject({ pid, exitCode: 3, signal: null });
    expect(exit.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('delivers output while the process still runs, then takes its stdin', async () => {
    const rec = new Recorder(client);
    const { pid } = await client.spawn({ argv: ['sh', '-c', 'echo ready; read x; echo "got $x"; exit 0'] });
    rec.only(pid);
    await rec.until('ready', () => rec.text('stdout') === 'ready\n');
    // Still running: no exit yet, and the agent says so.
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.exit).toBeUndefined();
    const listed = (await client.listProcesses()).find((p) => p.pid === pid);
    expect(listed).toMatchObject({
      pid,
      argv: ['sh', '-c', 'echo ready; read x; echo "got $x"; exit 0'],
      pty: false,
      running: true,
      exitCode: null,
      signal: null,
    });
    expect(await client.writeStdin(pid, Buffer.from('hello\n'))).toEqual({ bytesAccepted: 6 });
    expect(await rec.waitExit()).toMatchObject({ exitCode: 0, signal: null });
    rec.stop();
    expect(rec.text('stdout')).toBe('ready\ngot hello\n');
    expect((await client.listProcesses()).find((p) => p.pid === pid)).toMatchObject({ running: false, exitCode: 0 });
  });

  it('feeds binary stdin larger than a pipe through cat and closes it on eof', async () => {
    const rec = new Recorder(client);
    const { pid } = await client.spawn({ argv: ['cat'] });
    rec.only(pid);
    const data = randomBytes(900 * 1024);
    expect(await client.writeStdin(pid, data.subarray(0, 500_000))).toEqual({ bytesAccepted: 500_000 });
    expect(await client.writeStdin(pid, data.subarray(500_000), { eof: true })).toEqual({ bytesAccepted: data.length - 500_000 });
    const { code } = await agentCode(client.writeStdin(pid, Buffer.from('late')));
    expect(code).toBe('STDIN_CLOSED');
    expect(await rec.waitExit()).toMatchObject({ exitCode: 0 });
    rec.stop();
    const out = Buffer.concat(rec.events.flatMap((e) => (e.type === 'stdout' ? [e.data] : [])));
    expect(createHash('sha256').update(out).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(Math.max(...rec.events.map((e) => (e.type === 'stdout' ? e.data.length : 0)))).toBeLessThanOrEqual(64 * 1024);
  });

  it('refuses stdin beyond the 1 MiB queue with STDIN_FULL and queues nothing of it', async () => {
    const { pid } = await client.spawn({ argv: ['sleep', '100'] });
    const over = await agentCode(client.writeStdin(pid, Buffer.alloc(PROC_STDIN_MAX_BYTES + 1)));
    expect(over.err).toBeInstanceOf(VmBusyError);
    expect(over.code).toBe('STDIN_FULL');
    // sleep never reads: the pipe takes up to 64 KiB, the rest stays queued.
    expect(await client.writeStdin(pid, Buffer.alloc(PROC_STDIN_MAX_BYTES))).toEqual({ bytesAccepted: PROC_STDIN_MAX_BYTES });
    expect((await agentCode(client.writeStdin(pid, Buffer.alloc(128 * 1024)))).code).toBe('STDIN_FULL');
    const rec = new Recorder(client, pid);
    await client.signalProcess(pid, 'SIGKILL');
    expect(await rec.waitExit()).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
    rec.stop();
  });

  it('signals the process group: SIGTERM ends sleep with signal SIGTERM', async () => {
    const { pid } = await client.spawn({ argv: ['sleep', '100'] });
    const rec = new Recorder(client, pid);
    await client.signalProcess(pid, 'SIGTERM');
    expect(await rec.waitExit()).toMatchObject({ pid, exitCode: null, signal: 'SIGTERM' });
    rec.stop();
    // Once reaped, the pid may belong to someone else: the agent refuses to signal it.
    const gone = await agentCode(client.signalProcess(pid, 'SIGKILL'));
    expect(gone.err).toBeInstanceOf(ProcessNotFoundError);
    await expect(client.signalProcess(pid, 'SIGSEGV' as never)).rejects.toThrow(InvalidArgumentError);
  });

  it.skipIf(!hasStty)('runs a shell on a pty: stty size sees the spawn size, then the resized one', async () => {
    const rec = new Recorder(client);
    const { pid } = await client.spawn({ argv: ['sh'], env: { PS1: '$ ' }, pty: { cols: 91, rows: 37 } });
    rec.only(pid);
    await client.writeStdin(pid, Buffer.from('stty size; echo "term=$TERM"; tty\n'));
    await rec.until('the first size', () => /37 91\r?\n/.test(rec.text('stdout')) && /term=xterm-256color\r?\n\/dev\/pts\/\d+/.test(rec.text('stdout')));
    expect(rec.events.some((e) => e.type === 'stderr')).toBe(false);
    await client.resizePty(pid, 120, 42);
    await client.writeStdin(pid, Buffer.from('stty size\n'));
    await rec.until('the new size', () => /42 120\r?\n/.test(rec.text('stdout')));
    await client.writeStdin(pid, Buffer.from('exit 7\n'));
    expect(await rec.waitExit()).toMatchObject({ exitCode: 7, signal: null });
    rec.stop();
    expect((await client.listProcesses()).find((p) => p.pid === pid)).toMatchObject({ pty: true, running: false, exitCode: 7 });
  });

  it('sends end-of-file on a pty as ^D, which ends cat', async () => {
    const rec = new Recorder(client);
    const { pid } = await client.spawn({ argv: ['cat'], pty: { cols: 80, rows: 24 } });
    rec.only(pid);
    await client.writeStdin(pid, Buffer.from('abc\n'));
    await client.closeStdin(pid);
    expect(await rec.waitExit()).toMatchObject({ exitCode: 0 });
    rec.stop();
    // The terminal echoes the input, then cat writes it: both with CR LF.
    expect(rec.text('stdout')).toBe('abc\r\nabc\r\n');
  });

  it('refuses to resize a process without a pty, and names unknown pids', async () => {
    const { pid } = await client.spawn({ argv: ['sleep', '100'] });
    const notPty = await agentCode(client.resizePty(pid, 80, 24));
    expect(notPty.err).toBeInstanceOf(InvalidStateError);
    expect(notPty.code).toBe('NOT_A_PTY');
    await expect(client.resizePty(pid, 0, 24)).rejects.toThrow(InvalidArgumentError);
    const rec = new Recorder(client, pid);
    await client.signalProcess(pid, 'SIGKILL');
    await rec.waitExit();
    rec.stop();
    const unknown = await agentCode(client.writeStdin(2 ** 30, Buffer.from('x')));
    expect(unknown.err).toBeInstanceOf(ProcessNotFoundError);
    expect(unknown.code).toBe('PROCESS_NOT_FOUND');
  });

  it('reports a missing program as a spawn error, like exec', async () => {
    await expect(client.spawn({ argv: ['/nonexistent/tfc-nope'] })).rejects.toThrow(GuestCommandNotFoundError);
    await expect(client.spawn({ argv: ['tfc-no-such-command'] })).rejects.toThrow(/command not found in guest: tfc-no-such-command/);
    await expect(client.spawn({ argv: ['true'], cwd: '/nonexistent-dir' })).rejects.toThrow(/cannot change directory/);
    await expect(client.spawn({ argv: [] })).rejects.toThrow(InvalidArgumentError);
  });

  it('reports the exit without waiting for a grandchild that keeps stdout open', async () => {
    const rec = new Recorder(client);
    const started = Date.now();
    const { pid } = await client.spawn({ argv: ['sh', '-c', 'sleep 5 & echo started; exit 4'] });
    rec.only(pid);
    expect(await rec.waitExit(4_000)).toMatchObject({ exitCode: 4 });
    expect(Date.now() - started).toBeLessThan(2_500);
    rec.stop();
    expect(rec.text('stdout')).toBe('started\n');
  });

  it(`refuses process ${PROC_MAX_LIVE + 1} with TOO_MANY_PROCESSES until one has exited`, async () => {
    const rec = new Recorder(client);
    const pids: number[] = [];
    try {
      // Processes of earlier tests that still run count too.
      const running = (await client.listProcesses()).filter((p) => p.running).length;
      for (let i = running; i < PROC_MAX_LIVE; i++) pids.push((await client.spawn({ argv: ['sleep', '100'] })).pid);
      const refused = await agentCode(client.spawn({ argv: ['true'] }));
      expect(refused.err).toBeInstanceOf(VmBusyError);
      expect(refused.code).toBe('TOO_MANY_PROCESSES');
    } finally {
      for (const pid of pids) await client.signalProcess(pid, 'SIGKILL');
    }
    await rec.until('every exit', () => pids.every((pid) => rec.events.some((e) => e.type === 'exit' && e.pid === pid)));
    rec.stop();
    const again = await client.spawn({ argv: ['true'] });
    expect(again.pid).toBeGreaterThan(0);
    // The listing is bounded: live ones plus the most recent exited ones.
    expect((await client.listProcesses()).length).toBeLessThanOrEqual(64);
  });

  it('answers other requests while a process floods output', async () => {
    const rec = new Recorder(client);
    const { pid } = await client.spawn({ argv: ['yes', 'tfc'] });
    rec.only(pid);
    await rec.until('some output', () => rec.events.length > 3);
    const t = performance.now();
    for (let i = 0; i < 5; i++) expect((await client.ping({ timeoutMs: 5_000 })).uptimeMs).toBeGreaterThan(0);
    expect(performance.now() - t).toBeLessThan(3_000);
    await client.signalProcess(pid, 'SIGKILL');
    expect(await rec.waitExit()).toMatchObject({ signal: 'SIGKILL' });
    rec.stop();
    expect(rec.text('stdout').startsWith('tfc\ntfc\n')).toBe(true);
  });

  it('answers requests sent after an exec while the exec runs, and runs execs side by side', async () => {
    const t = performance.now();
    const slow = client.exec({ argv: ['sh', '-c', 'sleep 1; echo slow'] });
    const other = client.exec({ argv: ['sh', '-c', 'sleep 1; echo other'] });
    await client.ping();
    expect(performance.now() - t).toBeLessThan(800);
    const fast = await client.exec({ argv: ['echo', 'fast'] });
    expect(fast.stdout.toString()).toBe('fast\n');
    expect(performance.now() - t).toBeLessThan(800);
    expect((await slow).stdout.toString()).toBe('slow\n');
    expect((await other).stdout.toString()).toBe('other\n');
    // Both slept at once.
    expect(performance.now() - t).toBeLessThan(1_900);
  });

  it('runs at most 16 execs at once: one more is refused with TOO_MANY_PROCESSES, the rest complete', async () => {
    const calls = Array.from({ length: 17 }, (_, i) => client.exec({ argv: ['sh', '-c', `sleep 0.5; echo ${i}`] }).catch((e: unknown) => e));
    const results = await Promise.all(calls);
    const refused = results.filter((r) => r instanceof TfcError) as TfcError[];
    expect(refused).toHaveLength(1);
    expect(refused[0]).toBeInstanceOf(VmBusyError);
    expect(refused[0]!.details?.agent_code).toBe('TOO_MANY_PROCESSES');
    const outputs = results.filter((r) => !(r instanceof TfcError)).map((r) => (r as { stdout: Buffer }).stdout.toString());
    expect(outputs).toHaveLength(16);
    expect((await client.exec({ argv: ['echo', 'again'] })).stdout.toString()).toBe('again\n');
  });

  it('keeps processes running without a host and reports their exit to the next connection', async () => {
    const path = await startAgent('reconnect');
    const first = await connect(path);
    const { pid } = await first.spawn({ argv: ['sh', '-c', 'sleep 0.3; echo done; exit 5'] });
    first.close();
    await new Promise((r) => setTimeout(r, 800));
    const second = await connectUnix(path, { timeoutMs: 5_000 });
    clients.add(second);
    const rec = new Recorder(second, pid);
    expect(await rec.waitExit()).toMatchObject({ pid, exitCode: 5 });
    // The output waited in the pipe, so it comes first.
    expect(rec.text('stdout')).toBe('done\n');
    rec.stop();
  });

  it('drops the reply of an exec whose host went away instead of sending it to the next host', async () => {
    const path = await startAgent('exec-reconnect');
    const first = await connect(path);
    const pending = first.exec({ argv: ['sh', '-c', 'sleep 0.4; echo late'] }).catch((e: unknown) => e);
    await first.ping();
    first.close();
    expect(await pending).toMatchObject({ code: 'AGENT_DISCONNECTED' });
    const second = await connect(path);
    const fatal: unknown[] = [];
    second.onFatal((e) => fatal.push(e));
    // Keep asking past the moment the first host's exec ends: a stray reply would be fatal here.
    for (const end = Date.now() + 900; Date.now() < end;) {
      await second.ping();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(fatal).toEqual([]);
    expect(second.closed).toBe(false);
    expect((await second.exec({ argv: ['echo', 'fresh'] })).stdout.toString()).toBe('fresh\n');
  });

  it('adopts and reaps orphaned grandchildren (the agent is a child subreaper): no zombies left', async () => {
    const agentPid = (await client.hello()).pid;
    const rec = new Recorder(client);
    const { pid } = await client.spawn({ argv: ['sh', '-c', 'sleep 0.6 >/dev/null & echo $!; exit 0'] });
    rec.only(pid);
    await rec.waitExit();
    rec.stop();
    const orphan = Number(rec.text('stdout').trim());
    const stat = () => readFileSync(`/proc/${orphan}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // stat fields after the name: state, ppid, ...
    expect(Number(stat()[1])).toBe(agentPid);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(existsSync(`/proc/${orphan}`) ? stat()[0] : 'reaped').toBe('reaped');
  });
});
