/**
 * list_dir, stat, mkdir and remove: the real agent (compiled from src/agent)
 * over --unix, working in a temporary directory of the host, driven by the
 * real client; then a scripted peer for replies a real agent never sends.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentError, InvalidArgumentError, type TfcError } from '../errors/index.js';
import { AgentClient, connectUnix } from './agent-client.js';
import { FrameDecoder, encodeFrame } from './agent-frame.js';

const AGENT_SOURCE_DIR = fileURLToPath(new URL('../agent/', import.meta.url));
const hasGcc = spawnSync('gcc', ['--version']).status === 0;
if (!hasGcc) console.warn('skipping agent fs tests: gcc is not installed (apt-get install gcc libc6-dev)');

let dir = '';
const clients = new Set<AgentClient>();

function waitExit(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

async function agentCode(promise: Promise<unknown>): Promise<{ code: unknown; message: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgentError);
  return { code: (err as TfcError).details?.agent_code, message: (err as Error).message };
}

describe.skipIf(!hasGcc)('agent filesystem ops over --unix', () => {
  let child: ChildProcess;
  let client: AgentClient;
  let root = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-agent-fs-'));
    root = join(dir, 'root');
    mkdirSync(root);
    const binary = join(dir, 'tfc-agent');
    const sources = readdirSync(AGENT_SOURCE_DIR)
      .filter((f) => f.endsWith('.c'))
      .map((f) => join(AGENT_SOURCE_DIR, f));
    const gcc = spawn('gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', binary, ...sources], { stdio: 'inherit' });
    expect(await waitExit(gcc)).toBe(0);
    const socketPath = join(dir, 'agent.sock');
    child = spawn(binary, ['--unix', socketPath], { stdio: ['ignore', 'ignore', 'pipe'] });
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
    });
    client = await connectUnix(socketPath, { timeoutMs: 5_000 });
    clients.add(client);
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await waitExit(child);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('creates nested directories with parents, and reports an existing one', async () => {
    const deep = join(root, 'a', 'b', 'c');
    expect(await client.mkdir(deep, { parents: true })).toEqual({ created: true });
    expect(lstatSync(deep).isDirectory()).toBe(true);
    expect(await client.mkdir(deep, { parents: true })).toEqual({ created: false });
    expect((await agentCode(client.mkdir(deep))).code).toBe('FILE_EXISTS');
    expect((await agentCode(client.mkdir(join(root, 'nope', 'x')))).code).toBe('FILE_NOT_FOUND');
  });

  it('applies an explicit mode exactly and refuses a file in the way', async () => {
    const d = join(root, 'private');
    await client.mkdir(d, { mode: 0o700 });
    expect(lstatSync(d).mode & 0o7777).toBe(0o700);
    writeFileSync(join(root, 'plain'), 'x');
    expect((await agentCode(client.mkdir(join(root, 'plain'), { parents: true }))).code).toBe('FILE_EXISTS');
    expect((await agentCode(client.mkdir(join(root, 'plain', 'sub'), { parents: true }))).code).toBe('FILE_ERROR');
    await expect(client.mkdir(d, { mode: 0o10000 })).rejects.toThrow(InvalidArgumentError);
  });

  it('lists a directory sorted by name with types, sizes and modes, without following links', async () => {
    const d = join(root, 'list');
    mkdirSync(join(d, 'sub'), { recursive: true });
    writeFileSync(join(d, 'b.txt'), 'hello');
    symlinkSync('/etc', join(d, 'link'));
    const listing = await client.listDir(d);
    expect(listing.truncated).toBe(false);
    expect(listing.entries.map((e) => [e.name, e.type])).toEqual([
      ['b.txt', 'file'],
      ['link', 'symlink'],
      ['sub', 'dir'],
    ]);
    const file = listing.entries[0]!;
    expect(file.size).toBe(5);
    expect(file.mode).toBe(lstatSync(join(d, 'b.txt')).mode & 0o7777);
    expect(Math.abs(file.mtimeMs - lstatSync(join(d, 'b.txt')).mtimeMs)).toBeLessThan(1000);
    expect(file.nameBytes).toBeUndefined();
  });

  it('caps a listing at maxEntries and says it was truncated', async () => {
    const d = join(root, 'many');
    mkdirSync(d);
    for (let i = 0; i < 25; i++) writeFileSync(join(d, `f${i}`), '');
    const capped = await client.listDir(d, { maxEntries: 10 });
    expect(capped.entries).toHaveLength(10);
    expect(capped.truncated).toBe(true);
    const exact = await client.listDir(d, { maxEntries: 25 });
    expect(exact.entries).toHaveLength(25);
    expect(exact.truncated).toBe(false);
    await expect(client.listDir(d, { maxEntries: 0 })).rejects.toThrow(InvalidArgumentError);
    await expect(client.listDir(d, { maxEntries: 10_001 })).rejects.toThrow(InvalidArgumentError);
  });

  it('returns the exact bytes of a name that is not UTF-8', async () => {
    const d = join(root, 'bytes');
    mkdirSync(d);
    const raw = Buffer.from([0x61, 0xff, 0x62]);
    writeFileSync(Buffer.concat([Buffer.from(`${d}/`), raw]), '');
    const [e] = (await client.listDir(d)).entries;
    expect(e!.name).toBe('a\ufffdb');
    expect(e!.nameBytes).toEqual(raw);
  });

  it('fails to list a missing path or a file', async () => {
    expect((await agentCode(client.listDir(join(root, 'missing')))).code).toBe('FILE_NOT_FOUND');
    writeFileSync(join(root, 'file'), 'x');
    const notDir = await agentCode(client.listDir(join(root, 'file')));
    expect(notDir.code).toBe('FILE_ERROR');
    expect(notDir.message).toMatch(/Not a directory/);
  });

  it('stats files, directories and symlinks (lstat, with the link target)', async () => {
    writeFileSync(join(root, 'st'), 'four');
    const st = await client.stat(join(root, 'st'));
    const host = lstatSync(join(root, 'st'));
    expect(st).toMatchObject({ type: 'file', size: 4, mode: host.mode & 0o7777, uid: host.uid, gid: host.gid, symlinkTarget: null });
    symlinkSync('/nowhere/at/all', join(root, 'dangling'));
    expect(await client.stat(join(root, 'dangling'))).toMatchObject({ type: 'symlink', symlinkTarget: '/nowhere/at/all' });
    expect((await client.stat(root)).type).toBe('dir');
    expect((await client.stat('/dev/null')).type).toBe('other');
    expect((await agentCode(client.stat(join(root, 'missing')))).code).toBe('FILE_NOT_FOUND');
  });

  it('removes files and empty directories; a full one only with recursive', async () => {
    writeFileSync(join(root, 'gone'), 'x');
    expect(await client.remove(join(root, 'gone'))).toEqual({ removed: 1 });
    expect(existsSync(join(root, 'gone'))).toBe(false);
    mkdirSync(join(root, 'full', 'inner'), { recursive: true });
    writeFileSync(join(root, 'full', 'inner', 'f'), 'x');
    const notEmpty = await agentCode(client.remove(join(root, 'full')));
    expect(notEmpty.code).toBe('FILE_ERROR');
    expect(notEmpty.message).toMatch(/not empty; pass recursive/);
    expect(await client.remove(join(root, 'full'), { recursive: true })).toEqual({ removed: 3 });
    expect(existsSync(join(root, 'full'))).toBe(false);
    expect((await agentCode(client.remove(join(root, 'full')))).code).toBe('FILE_NOT_FOUND');
  });

  it('removes symlinks inside a tree without following them', async () => {
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep'), 'precious');
    mkdirSync(join(root, 'tree'));
    symlinkSync(outside, join(root, 'tree', 'to-outside'));
    symlinkSync(outside, join(root, 'link-to-dir'));
    expect(await client.remove(join(root, 'tree'), { recursive: true })).toEqual({ removed: 2 });
    expect(await client.remove(join(root, 'link-to-dir') + '//', { recursive: true })).toEqual({ removed: 1 });
    expect(existsSync(join(root, 'link-to-dir'))).toBe(false);
    expect(readdirSync(outside)).toEqual(['keep']);
  });

  it('refuses to remove the root directory however it is spelled', async () => {
    for (const p of ['/', '//', '/.', `${root}/../../../../../../../..`]) {
      const r = await agentCode(client.remove(p, { recursive: true }));
      expect(r.code).toBe('BAD_REQUEST');
      expect(r.message).toMatch(/refusing to remove the root directory/);
    }
  });
});

describe('filesystem replies a real agent never sends', () => {
  let peerDir = '';
  const servers = new Set<net.Server>();
  const sockets = new Set<net.Socket>();

  beforeAll(() => {
    peerDir = mkdtempSync(join(tmpdir(), 'tfc-agent-fs-peer-'));
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const s of sockets) s.destroy();
    await Promise.all([...servers].map((s) => new Promise((res) => s.close(res))));
    if (peerDir) rmSync(peerDir, { recursive: true, force: true });
  });

  async function peer(result: (req: Record<string, unknown>) => object): Promise<AgentClient> {
    const path = join(peerDir, `peer-${servers.size}.sock`);
    const server = net.createServer((socket) => {
      sockets.add(socket);
      const decoder = new FrameDecoder();
      socket.on('data', (chunk: Buffer) => {
        for (const req of decoder.push(chunk)) socket.write(encodeFrame({ v: 1, id: req.id, ok: true, result: result(req) }));
      });
    });
    servers.add(server);
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const client = await connectUnix(path, { timeoutMs: 2_000 });
    clients.add(client);
    return client;
  }

  const entry = { name: 'x', type: 'file', size: 1, mode: 0o644, mtime_ms: 0 };

  it('treats more entries than asked for as a protocol violation', async () => {
    const client = await peer(() => ({ entries: [entry, entry, entry], truncated: false }));
    await expect(client.listDir('/d', { maxEntries: 2 })).rejects.toThrow(/carried 3 entries/);
    expect(client.fatal?.code).toBe('AGENT_PROTOCOL');
  });

  it('treats an entry of an unknown type as a protocol violation', async () => {
    const client = await peer(() => ({ entries: [{ ...entry, type: 'door' }], truncated: false }));
    await expect(client.listDir('/d')).rejects.toThrow(/invalid 'entries'/);
    expect(client.closed).toBe(true);
  });

  it('treats a stat without its fields as a protocol violation', async () => {
    const client = await peer(() => ({ type: 'file', size: 1 }));
    await expect(client.stat('/f')).rejects.toThrow(/invalid 'mode'/);
    expect(client.fatal?.code).toBe('AGENT_PROTOCOL');
  });
});
