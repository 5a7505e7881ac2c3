/**
 * The real agent (compiled with gcc from src/agent) served over --unix, driven
 * by the real client. Nothing here changes the host: set_clock, add_entropy
 * and reboot are only exercised on their refusal paths, and shutdown in
 * --unix mode just makes the agent exit.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentDisconnectedError,
  AgentError,
  AgentProtocolError,
  AgentTimeoutError,
  GuestCommandNotFoundError,
  InvalidArgumentError,
  TfcError,
} from '../errors/index.js';
import { AgentClient, connectUnix } from './agent-client.js';
import { FrameDecoder, MAX_REQUEST_FRAME_BYTES, encodeFrame } from './agent-frame.js';

const AGENT_SOURCE_DIR = fileURLToPath(new URL('../agent/', import.meta.url));
const MIB = 1024 * 1024;
const hasGcc = spawnSync('gcc', ['--version']).status === 0;
if (!hasGcc) console.warn('skipping agent tests: gcc is not installed (apt-get install gcc libc6-dev)');

interface RunningAgent {
  child: ChildProcess;
  socketPath: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let dir = '';
let agentBinary = '';
const agents = new Set<RunningAgent>();
const clients = new Set<AgentClient>();

function waitExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
    } else {
      child.once('exit', (code, signal) => resolve({ code, signal }));
    }
  });
}

async function compileAgent(output: string): Promise<void> {
  const sources = readdirSync(AGENT_SOURCE_DIR)
    .filter((f) => f.endsWith('.c'))
    .map((f) => join(AGENT_SOURCE_DIR, f));
  const gcc = spawn('gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', output, ...sources], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  gcc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const { code } = await waitExit(gcc);
  if (code !== 0) throw new Error(`gcc failed (exit ${code}):\n${stderr}`);
}

/** Starts an agent on its own socket and waits for its ready line. */
async function startAgent(name: string): Promise<RunningAgent> {
  const socketPath = join(dir, `${name}.sock`);
  const child = spawn(agentBinary, ['--unix', socketPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  const agent: RunningAgent = { child, socketPath, exited: waitExit(child) };
  agents.add(agent);
  await new Promise<void>((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`agent did not get ready: ${stderr}`)), 10_000);
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (/tfc-agent: ready transport=unix uptime_ms=\d+\n/.test(stderr)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code}: ${stderr}`));
    });
  });
  return agent;
}

async function connect(agent: RunningAgent): Promise<AgentClient> {
  const client = await connectUnix(agent.socketPath, { timeoutMs: 5_000 });
  clients.add(client);
  return client;
}

/** A bare connection for sending frames the client would never send. */
class RawConnection {
  private readonly decoder = new FrameDecoder();
  private readonly received: Record<string, unknown>[] = [];
  private wake: (() => void) | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.received.push(...this.decoder.push(c));
      this.wake?.();
    });
  }

  static open(path: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ path });
      s.once('connect', () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  send(message: object | Buffer): void {
    this.socket.write(Buffer.isBuffer(message) ? message : encodeFrame(message));
  }

  async next(timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length === 0) {
      if (Date.now() > deadline) throw new Error('no reply from the agent');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    return this.received.shift()!;
  }

  close(): void {
    this.socket.destroy();
  }
}

function header(length: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(length);
  return h;
}

async function expectAgentError(promise: Promise<unknown>, agentCode: string, message?: RegExp): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgentError);
  expect((err as TfcError).details?.agent_code).toBe(agentCode);
  if (message) expect((err as Error).message).toMatch(message);
}

/** True when pid no longer runs (gone, or a zombie nobody reaped yet). */
function isDead(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return true;
  }
}

describe.skipIf(!hasGcc)('guest agent over --unix', () => {
  // The agent serves one connection at a time: `client` holds the main
  // agent's, so tests that need connections of their own use `rawAgent`
  // (one connection at a time, closed at the end of each test) or their own.
  let agent: RunningAgent;
  let client: AgentClient;
  let rawAgent: RunningAgent;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-agent-test-'));
    agentBinary = join(dir, 'tfc-agent');
    await compileAgent(agentBinary);
    agent = await startAgent('main');
    client = await connect(agent);
    rawAgent = await startAgent('raw');
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const a of agents) {
      if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
      await a.exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('hello and ping', () => {
    it('identifies the agent, its transport and its process', async () => {
      const h = await client.hello();
      expect(h).toMatchObject({ agentVersion: '0.1.0', protocol: 1, transport: 'unix', pid: agent.child.pid });
      expect(h.kernelRelease).toBe(release());
      expect(h.readyUptimeMs).toBeGreaterThan(0);
      expect(h.uptimeMs).toBeGreaterThanOrEqual(h.readyUptimeMs);
    });

    it('answers many concurrent requests, each with its own reply', async () => {
      const before = (await client.ping()).uptimeMs;
      const replies = await Promise.all(Array.from({ length: 20 }, () => client.ping()));
      for (const r of replies) expect(r.uptimeMs).toBeGreaterThanOrEqual(before);
      const echoes = await Promise.all(Array.from({ length: 5 }, (_, i) => client.exec({ argv: ['echo', `n${i}`] })));
      expect(echoes.map((e) => e.stdout.toString())).toEqual(['n0\n', 'n1\n', 'n2\n', 'n3\n', 'n4\n']);
    });
  });

  describe('exec', () => {
    it('runs a command without a shell and returns its output', async () => {
      const r = await client.exec({ argv: ['echo', 'hello', '$HOME; rm -rf /'] });
      expect(r).toMatchObject({ exitCode: 0, signal: null, timedOut: false, stdoutTruncated: false });
      expect(r.stdout.toString()).toBe('hello $HOME; rm -rf /\n');
      expect(r.stderr.length).toBe(0);
    });

    it('propagates the exit code and stderr', async () => {
      const r = await client.exec({ argv: ['sh', '-c', 'echo oops >&2; exit 7'] });
      expect(r.exitCode).toBe(7);
      expect(r.signal).toBeNull();
      expect(r.stderr.toString()).toBe('oops\n');
    });

    it('reports death by signal', async () => {
      const r = await client.exec({ argv: ['sh', '-c', 'kill -TERM $$'] });
      expect(r.exitCode).toBeNull();
      expect(r.signal).toBe('SIGTERM');
    });

    it('kills the whole process group on timeout and says so', async () => {
      const started = Date.now();
      const r = await client.exec({ argv: ['sh', '-c', 'sleep 30 & echo $!; wait'], timeoutMs: 300 });
      expect(r).toMatchObject({ timedOut: true, exitCode: null, signal: 'SIGKILL' });
      expect(r.durationMs).toBeGreaterThanOrEqual(300);
      expect(Date.now() - started).toBeLessThan(10_000);
      const grandchild = Number(r.stdout.toString().trim());
      expect(grandchild).toBeGreaterThan(0);
      expect(isDead(grandchild)).toBe(true);
    });

    it('returns soon after the command exits even if a background child keeps the pipes', async () => {
      const marker = join(dir, 'background-ran');
      const started = Date.now();
      const r = await client.exec({
        argv: ['sh', '-c', `(sleep 2; touch ${marker}) & echo early`],
      });
      expect(Date.now() - started).toBeLessThan(1_500);
      expect(r.stdout.toString()).toBe('early\n');
      expect(r.exitCode).toBe(0);
      expect(existsSync(marker)).toBe(false);
      // The background child was left alone, not killed.
      for (let i = 0; i < 100 && !existsSync(marker); i++) await new Promise((res) => setTimeout(res, 50));
      expect(existsSync(marker)).toBe(true);
    });

    it('keeps only maxOutputBytes per stream but drains the rest so the command finishes', async () => {
      const r = await client.exec({
        argv: ['sh', '-c', 'head -c 5242880 /dev/zero; head -c 3000 /dev/zero >&2'],
        maxOutputBytes: 2000,
      });
      expect(r.exitCode).toBe(0);
      expect(r.stdout.length).toBe(2000);
      expect(r.stdoutTruncated).toBe(true);
      expect(r.stderr.length).toBe(2000);
      expect(r.stderrTruncated).toBe(true);
      const def = await client.exec({ argv: ['head', '-c', String(3 * MIB), '/dev/zero'] });
      expect(def.stdout.length).toBe(MIB);
      expect(def.stdoutTruncated).toBe(true);
    });

    it('returns several MiB of binary output intact', async () => {
      const data = randomBytes(6 * MIB);
      const path = join(dir, 'random.bin');
      writeFileSync(path, data);
      const r = await client.exec({ argv: ['cat', path], maxOutputBytes: 8 * MIB });
      expect(r.stdoutTruncated).toBe(false);
      expect(r.stdout.equals(data)).toBe(true);
    });

    it('feeds binary stdin larger than a pipe buffer', async () => {
      const input = randomBytes(300_000);
      const r = await client.exec({ argv: ['cat'], stdin: input });
      expect(r.stdout.equals(input)).toBe(true);
      const text = await client.exec({ argv: ['wc', '-c'], stdin: 'héllo' });
      expect(text.stdout.toString().trim()).toBe('6');
    });

    it('does not deadlock on a command that never reads its stdin', async () => {
      const r = await client.exec({ argv: ['sleep', '0.2'], stdin: Buffer.alloc(2 * MIB) });
      expect(r.exitCode).toBe(0);
    });

    it('passes only the base environment plus the requested variables', async () => {
      const r = await client.exec({ argv: ['env'], env: { FOO: 'bar baz', HOME: '/tmp' } });
      expect(r.stdout.toString().trim().split('\n').sort()).toEqual([
        'FOO=bar baz',
        'HOME=/tmp',
        'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/.tfc/bin',
        'TERM=dumb',
      ]);
    });

    it('runs in cwd, and names a bad cwd in the error', async () => {
      const r = await client.exec({ argv: ['pwd'], cwd: dir });
      expect(r.stdout.toString()).toBe(`${dir}\n`);
      const missing = join(dir, 'no-such-dir');
      await expectAgentError(client.exec({ argv: ['pwd'], cwd: missing }), 'EXEC_FAILED', new RegExp(missing));
    });

    it('gives the command no file descriptors beyond 0, 1 and 2', async () => {
      const r = await client.exec({ argv: ['ls', '/proc/self/fd'] });
      // ls itself holds one more: the directory it is listing.
      const fds = r.stdout.toString().trim().split('\n').map(Number);
      expect(fds.filter((fd) => fd > 2).length).toBeLessThanOrEqual(1);
    });

    it('throws GuestCommandNotFoundError for a missing command', async () => {
      const err = await client.exec({ argv: ['no-such-command-xyz', 'arg'] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GuestCommandNotFoundError);
      expect((err as TfcError).code).toBe('GUEST_COMMAND_NOT_FOUND');
      expect((err as TfcError).details?.agent_code).toBe('EXEC_NOT_FOUND');
      expect((err as Error).message).toMatch(/command not found in guest: no-such-command-xyz/);
    });

    it('reports a file that cannot be executed as EXEC_FAILED', async () => {
      const path = join(dir, 'not-executable');
      writeFileSync(path, '#!/bin/sh\necho hi\n', { mode: 0o644 });
      await expectAgentError(client.exec({ argv: [path] }), 'EXEC_FAILED', /Permission denied/);
    });

    it('validates arguments before sending', async () => {
      await expect(client.exec({ argv: [] })).rejects.toThrow(InvalidArgumentError);
      await expect(client.exec({ argv: ['true'], maxOutputBytes: 9 * MIB })).rejects.toThrow(InvalidArgumentError);
      await expect(client.exec({ argv: ['true'], timeoutMs: -1 })).rejects.toThrow(InvalidArgumentError);
    });
  });

  describe('files', () => {
    it('writes and reads back binary data', async () => {
      const data = randomBytes(MIB + 3);
      const path = join(dir, 'bin.dat');
      expect(await client.writeFile(path, data)).toEqual({ bytesWritten: data.length });
      expect(readFileSync(path).equals(data)).toBe(true);
      const r = await client.readFile(path);
      expect(r.truncated).toBe(false);
      expect(r.size).toBe(data.length);
      expect(r.data.equals(data)).toBe(true);
    });

    it('creates parent directories, appends, and applies the mode', async () => {
      const path = join(dir, 'a', 'b', 'c.txt');
      await client.writeFile(path, 'one\n', { mkdirs: true, mode: 0o600 });
      await client.writeFile(path, 'two\n', { append: true });
      expect(readFileSync(path, 'utf8')).toBe('one\ntwo\n');
      expect(statSync(path).mode & 0o7777).toBe(0o600);
      await client.writeFile(path, 'replaced');
      expect(readFileSync(path, 'utf8')).toBe('replaced');
    });

    it('truncates reads at maxBytes and still reports the full size', async () => {
      const path = join(dir, 'ten.txt');
      writeFileSync(path, '0123456789');
      expect(await client.readFile(path, { maxBytes: 4 })).toEqual({
        data: Buffer.from('0123'),
        size: 10,
        truncated: true,
      });
      expect((await client.readFile(path, { maxBytes: 10 })).truncated).toBe(false);
    });

    it('reads files whose size the kernel does not report', async () => {
      const r = await client.readFile('/proc/version');
      expect(r.data.toString()).toBe(readFileSync('/proc/version', 'utf8'));
      expect(r.size).toBe(r.data.length);
    });

    it('maps missing files and other failures to distinct codes', async () => {
      await expectAgentError(client.readFile(join(dir, 'missing')), 'FILE_NOT_FOUND', /missing/);
      await expectAgentError(client.readFile(dir), 'FILE_ERROR', /Is a directory/);
      const orphan = join(dir, 'nope', 'x.txt');
      await expectAgentError(client.writeFile(orphan, 'x'), 'FILE_ERROR', new RegExp(orphan));
      await expect(client.writeFile(join(dir, 'm'), 'x', { mode: 0o10000 })).rejects.toThrow(InvalidArgumentError);
    });

    it('moves a file larger than any frame in chunks, both ways, intact', async () => {
      const data = randomBytes(20 * MIB + 12_345);
      const path = join(dir, 'chunked', 'big.bin');
      async function* pieces() {
        // Uneven pieces, some larger than a chunk, some tiny.
        let at = 0;
        for (const size of [1, 3 * MIB, 100, 7 * MIB]) {
          yield data.subarray(at, at + size);
          at += size;
        }
        yield data.subarray(at);
      }
      const w = await client.writeFileFrom(path, pieces(), { mkdirs: true, mode: 0o640, chunkBytes: 2 * MIB });
      expect(w).toEqual({ bytes: data.length });
      expect(readFileSync(path).equals(data)).toBe(true);
      expect(statSync(path).mode & 0o777).toBe(0o640);
      const got: Buffer[] = [];
      for await (const piece of client.readFileChunks(path, { chunkBytes: 3 * MIB })) {
        expect(piece.length).toBeLessThanOrEqual(3 * MIB);
        got.push(piece);
      }
      expect(got.length).toBe(Math.ceil(data.length / (3 * MIB)));
      expect(Buffer.concat(got).equals(data)).toBe(true);
    });

    it('replaces an existing file, writes an empty one, and reads an empty file as no chunks', async () => {
      const path = join(dir, 'replace.txt');
      writeFileSync(path, 'old content that is longer');
      await client.writeFileFrom(path, ['new']);
      expect(readFileSync(path, 'utf8')).toBe('new');
      await client.writeFileFrom(path, []);
      expect(readFileSync(path, 'utf8')).toBe('');
      const chunks: Buffer[] = [];
      for await (const c of client.readFileChunks(path)) chunks.push(c);
      expect(chunks).toEqual([]);
    });

    it('reads /proc files in chunks and reports a missing file like readFile', async () => {
      const chunks: Buffer[] = [];
      for await (const c of client.readFileChunks('/proc/self/status', { chunkBytes: 100 })) chunks.push(c);
      expect(chunks.length).toBeGreaterThan(1);
      expect(Buffer.concat(chunks).toString()).toMatch(/^Name:\s+tfc-agent/);
      const iterate = async () => {
        for await (const c of client.readFileChunks(join(dir, 'missing'))) void c;
      };
      await expectAgentError(iterate(), 'FILE_NOT_FOUND', /missing/);
      await expect(client.writeFileFrom(join(dir, 'x'), [], { chunkBytes: 0 })).rejects.toThrow(InvalidArgumentError);
    });

    it('refuses a write too large for one request before sending it', async () => {
      await expect(client.writeFile(join(dir, 'huge'), Buffer.alloc(13 * MIB))).rejects.toThrow(InvalidArgumentError);
      expect((await client.ping()).uptimeMs).toBeGreaterThan(0);
    });
  });

  describe('clock, entropy and shutdown (refusal paths only: the host is not a guest)', () => {
    it('validates set_clock arguments on both sides', async () => {
      await expect(client.setClock(-1)).rejects.toThrow(InvalidArgumentError);
      await expect(client.setClock(1.5)).rejects.toThrow(InvalidArgumentError);
      const raw = await RawConnection.open(rawAgent.socketPath);
      try {
        raw.send({ v: 1, id: 11, op: 'set_clock', unix_ms: 'soon' });
        expect(await raw.next()).toMatchObject({ id: 11, ok: false, error: { code: 'BAD_REQUEST' } });
        raw.send({ v: 1, id: 12, op: 'set_clock' });
        expect(await raw.next()).toMatchObject({ id: 12, ok: false, error: { code: 'BAD_REQUEST' } });
      } finally {
        raw.close();
      }
    });

    it('accepts empty entropy without touching the pool and rejects bad base64', async () => {
      expect(await client.addEntropy(Buffer.alloc(0))).toEqual({ bytesAdded: 0 });
      const raw = await RawConnection.open(rawAgent.socketPath);
      try {
        raw.send({ v: 1, id: 13, op: 'add_entropy', data_b64: 'not base64!' });
        expect(await raw.next()).toMatchObject({ id: 13, ok: false, error: { code: 'BAD_REQUEST' } });
        raw.send({ v: 1, id: 14, op: 'shutdown', mode: 'halt' });
        expect(await raw.next()).toMatchObject({ id: 14, ok: false, error: { code: 'BAD_REQUEST' } });
      } finally {
        raw.close();
      }
      await expect(client.shutdown('halt' as 'reboot')).rejects.toThrow(InvalidArgumentError);
    });

    it('shutdown in --unix mode replies, then the agent exits 0 and removes its socket', async () => {
      const victim = await startAgent('shutdown');
      const c = await connect(victim);
      await c.shutdown('poweroff');
      expect(await victim.exited).toEqual({ code: 0, signal: null });
      expect(existsSync(victim.socketPath)).toBe(false);
    });
  });

  describe('connections', () => {
    it('serves a new connection after the client closes', async () => {
      const own = await startAgent('reconnect');
      const first = await connect(own);
      const pending = first.exec({ argv: ['sleep', '0.3'] });
      first.close();
      first.close(); // idempotent
      expect(first.closed).toBe(true);
      await expect(pending).rejects.toThrow(AgentDisconnectedError);
      await expect(first.ping()).rejects.toThrow(AgentDisconnectedError);
      const second = await connect(own);
      expect((await second.hello()).pid).toBe(own.child.pid);
      second.close();
    });

    it('times out a call, ignores its late reply, and keeps working', async () => {
      const err = await client.exec({ argv: ['sleep', '0.5'], timeoutMs: 0 }, { timeoutMs: 100 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AgentTimeoutError);
      const r = await client.exec({ argv: ['echo', 'after'] });
      expect(r.stdout.toString()).toBe('after\n');
    });

    it('rejects with the abort reason when the signal fires', async () => {
      const controller = new AbortController();
      const call = client.exec({ argv: ['sleep', '0.3'] }, { signal: controller.signal });
      controller.abort(new Error('caller changed its mind'));
      await expect(call).rejects.toThrow('caller changed its mind');
      await expect(client.ping({ signal: AbortSignal.abort(new Error('already')) })).rejects.toThrow('already');
      expect((await client.ping()).uptimeMs).toBeGreaterThan(0);
    });

    it('rejects pending calls with AgentDisconnectedError when the agent dies', async () => {
      const doomed = await startAgent('doomed');
      const c = await connect(doomed);
      const call = c.exec({ argv: ['sleep', '1'] });
      await new Promise((res) => setTimeout(res, 100));
      doomed.child.kill('SIGKILL');
      await expect(call).rejects.toThrow(AgentDisconnectedError);
      expect(c.closed).toBe(true);
    });

    it('connectUnix waits for the socket to appear, and times out when it never does', async () => {
      await expect(connectUnix(join(dir, 'never.sock'), { timeoutMs: 50 })).rejects.toThrow(AgentTimeoutError);
      const late = join(dir, 'late.sock');
      const connecting = connectUnix(late, { timeoutMs: 10_000 });
      await new Promise((res) => setTimeout(res, 100));
      const started = await startAgent('late');
      expect(started.socketPath).toBe(late);
      const c = await connecting;
      clients.add(c);
      expect((await c.ping()).uptimeMs).toBeGreaterThan(0);
    });
  });

  describe('malformed input (raw frames)', () => {
    it('answers each bad frame with an error and keeps the connection usable', async () => {
      const raw = await RawConnection.open(rawAgent.socketPath);
      try {
        raw.send(Buffer.concat([header(6), Buffer.from('{"id":')]));
        expect(await raw.next()).toMatchObject({ v: 1, id: 0, ok: false, error: { code: 'BAD_REQUEST' } });
        raw.send(header(0));
        expect(await raw.next()).toMatchObject({ id: 0, error: { code: 'BAD_REQUEST' } });
        raw.send(Buffer.concat([header(5), Buffer.from('[1,2]')]));
        expect(await raw.next()).toMatchObject({ id: 0, error: { code: 'BAD_REQUEST' } });
        raw.send({ v: 1, op: 'ping' });
        expect(await raw.next()).toMatchObject({ id: 0, error: { code: 'BAD_REQUEST' } });
        raw.send({ v: 2, id: 5, op: 'ping' });
        expect(await raw.next()).toMatchObject({ id: 5, error: { code: 'UNSUPPORTED_VERSION' } });
        raw.send({ v: 1, id: 6, op: 'teleport' });
        expect(await raw.next()).toMatchObject({ id: 6, error: { code: 'UNKNOWN_OP' } });
        raw.send({ v: 1, id: 7, op: 'exec', argv: ['echo', 1] });
        expect(await raw.next()).toMatchObject({ id: 7, error: { code: 'BAD_REQUEST' } });
        raw.send({ v: 1, id: 8, op: 'ping', extra: { ignored: [true] } });
        expect(await raw.next()).toMatchObject({ id: 8, ok: true });
      } finally {
        raw.close();
      }
    });

    it('refuses an oversized frame, skips its bytes and stays in sync', async () => {
      const raw = await RawConnection.open(rawAgent.socketPath);
      try {
        const size = MAX_REQUEST_FRAME_BYTES + 1;
        raw.send(header(size));
        expect(await raw.next()).toMatchObject({ id: 0, ok: false, error: { code: 'FRAME_TOO_LARGE' } });
        raw.send(Buffer.alloc(size, 0x7b)); // '{' x 16 MiB: would be bad JSON if parsed
        raw.send({ v: 1, id: 9, op: 'ping' });
        expect(await raw.next()).toMatchObject({ id: 9, ok: true });
      } finally {
        raw.close();
      }
    });

    it('discards a partial frame when the host disconnects mid-frame', async () => {
      const raw = await RawConnection.open(rawAgent.socketPath);
      const frame = encodeFrame({ v: 1, id: 10, op: 'ping' });
      raw.send(frame.subarray(0, 7));
      await new Promise((res) => setTimeout(res, 50));
      raw.close();
      const again = await RawConnection.open(rawAgent.socketPath);
      try {
        again.send({ v: 1, id: 11, op: 'ping' });
        expect(await again.next()).toMatchObject({ id: 11, ok: true });
      } finally {
        again.close();
      }
    });

    it('survives a host that disconnects before its reply is sent', async () => {
      const raw = await RawConnection.open(rawAgent.socketPath);
      raw.send({ v: 1, id: 12, op: 'exec', argv: ['sh', '-c', 'sleep 0.2; head -c 1000000 /dev/zero'] });
      await new Promise((res) => setTimeout(res, 50));
      raw.close();
      const again = await RawConnection.open(rawAgent.socketPath);
      try {
        again.send({ v: 1, id: 13, op: 'ping' });
        expect(await again.next()).toMatchObject({ id: 13, ok: true });
      } finally {
        again.close();
      }
      expect(rawAgent.child.exitCode).toBeNull();
    });
  });
});

describe('AgentClient against a scripted peer (what a real agent should never send)', () => {
  let peerDir = '';
  const servers = new Set<net.Server>();
  const peerSockets = new Set<net.Socket>();

  beforeAll(() => {
    peerDir = mkdtempSync(join(tmpdir(), 'tfc-agent-peer-'));
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const s of peerSockets) s.destroy();
    await Promise.all([...servers].map((s) => new Promise((res) => s.close(res))));
    if (peerDir) rmSync(peerDir, { recursive: true, force: true });
  });

  /** A fake agent that answers each request through `reply`. */
  async function peer(reply: (request: Record<string, unknown>, send: (message: object | Buffer) => void) => void): Promise<AgentClient> {
    const path = join(peerDir, `peer-${servers.size}.sock`);
    const server = net.createServer((socket) => {
      peerSockets.add(socket);
      const decoder = new FrameDecoder();
      socket.on('data', (chunk: Buffer) => {
        for (const request of decoder.push(chunk)) {
          reply(request, (m) => socket.write(Buffer.isBuffer(m) ? m : encodeFrame(m)));
        }
      });
    });
    servers.add(server);
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const client = await connectUnix(path, { timeoutMs: 2_000 });
    clients.add(client);
    return client;
  }

  it('attributes an error with id 0 to the oldest unanswered request', async () => {
    const client = await peer((req, send) => {
      if (req.op === 'ping') {
        send({ v: 1, id: 0, ok: false, error: { code: 'FRAME_TOO_LARGE', message: 'too big' } });
      } else {
        send({ v: 1, id: req.id, ok: true, result: { uptime_ms: 1, agent_version: 'x' } });
      }
    });
    await expectAgentError(client.ping(), 'FRAME_TOO_LARGE', /too big/);
  });

  it('ignores a late reply to a request whose caller gave up', async () => {
    const held: Array<() => void> = [];
    const client = await peer((req, send) => {
      held.push(() => send({ v: 1, id: req.id, ok: true, result: { uptime_ms: Number(req.id) } }));
      if (held.length === 2) for (const h of held) h();
    });
    await expect(client.ping({ timeoutMs: 50 })).rejects.toThrow(AgentTimeoutError);
    expect((await client.ping()).uptimeMs).toBeGreaterThan(0);
    expect(client.closed).toBe(false);
  });

  it('closes the channel on a malformed result (protocol violation)', async () => {
    const client = await peer((req, send) => send({ v: 1, id: req.id, ok: true, result: { uptime_ms: 'soon' } }));
    await expect(client.ping()).rejects.toThrow(/invalid 'uptime_ms'/);
    expect(client.closed).toBe(true);
    expect(client.fatal?.code).toBe('AGENT_PROTOCOL');
  });

  it('fails every pending call and closes on a frame it cannot parse', async () => {
    const client = await peer((_req, send) => send(Buffer.from([0, 0, 0, 3, 0x7b, 0x7b, 0x7b])));
    await expect(client.ping()).rejects.toThrow(AgentProtocolError);
    expect(client.closed).toBe(true);
  });

  it('refuses a reply in another protocol version', async () => {
    const client = await peer((req, send) => send({ v: 2, id: req.id, ok: true, result: {} }));
    await expect(client.ping()).rejects.toThrow(/protocol version 2/);
  });

  it('rejects an invalid call timeout before sending', async () => {
    const client = await peer(() => undefined);
    await expect(client.ping({ timeoutMs: -5 })).rejects.toThrow(InvalidArgumentError);
  });
});
