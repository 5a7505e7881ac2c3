/**
 * The hybrid vsock handshake against a small stand-in for Firecracker's
 * vsock socket: retries while the guest is not listening (connection closed,
 * or no answer), exactly one `OK` line consumed, bytes after it kept for the
 * agent protocol, and clear errors for a wrong answer or a dead socket.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectHybridVsock } from './vsock.js';

const dirs: string[] = [];
const servers: net.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A vsock socket whose answer to the n-th connection `behave` decides. */
function fakeVsock(behave: (conn: net.Socket, line: string, n: number) => void): Promise<{ path: string; lines: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'vsock-'));
  dirs.push(dir);
  const path = join(dir, 'v.sock');
  const lines: string[] = [];
  let n = 0;
  const server = net.createServer((conn) => {
    const i = n++;
    let buf = '';
    conn.on('error', () => undefined);
    conn.on('data', (d) => {
      buf += d.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl >= 0 && lines.length <= i) {
        lines.push(buf.slice(0, nl));
        behave(conn, buf.slice(0, nl), i);
      }
    });
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(path, () => resolve({ path, lines })));
}

describe('connectHybridVsock', () => {
  it('retries while the guest is not listening, then hands over the stream right after "OK <port>"', async () => {
    const vsock = await fakeVsock((conn, _line, n) => {
      if (n < 2) return conn.destroy(); // guest not listening yet: Firecracker closes the connection
      conn.write('OK 1073741824\nAGENT-BYTES');
    });
    const { socket, hostPort, attempts } = await connectHybridVsock(vsock.path, 1024, { timeoutMs: 5_000, retryDelayMs: 1 });
    expect(vsock.lines).toEqual(['CONNECT 1024', 'CONNECT 1024', 'CONNECT 1024']);
    expect(hostPort).toBe(1073741824);
    expect(attempts).toBe(3);
    const rest = await new Promise<string>((resolve) => {
      socket.once('data', (d: Buffer) => resolve(d.toString()));
      socket.resume();
    });
    expect(rest).toBe('AGENT-BYTES');
    socket.destroy();
  });

  it('retries an attempt that gets no answer, and waits for a socket that does not exist yet', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vsock-'));
    dirs.push(dir);
    const path = join(dir, 'late.sock');
    let n = 0;
    const server = net.createServer((conn) => {
      conn.on('error', () => undefined);
      if (n++ === 0) return void conn.resume(); // reads, answers nothing: the guest driver has not picked the request up
      conn.once('data', () => conn.write('OK 7\n'));
    });
    servers.push(server);
    setTimeout(() => server.listen(path), 100);
    const { socket, attempts } = await connectHybridVsock(path, 52, { timeoutMs: 5_000, attemptTimeoutMs: 200, retryDelayMs: 5 });
    expect(attempts).toBeGreaterThan(2);
    socket.destroy();
  });

  it('gives up at the deadline with AGENT_TIMEOUT saying why', async () => {
    const vsock = await fakeVsock((conn) => conn.destroy());
    const started = Date.now();
    await expect(connectHybridVsock(vsock.path, 1024, { timeoutMs: 300 })).rejects.toMatchObject({
      code: 'AGENT_TIMEOUT',
      message: expect.stringMatching(/port 1024 within 300 ms .*closed the connection/),
    });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('refuses an answer that is not "OK <port>" as AGENT_PROTOCOL, without retrying', async () => {
    const vsock = await fakeVsock((conn) => conn.write('NOPE\n'));
    await expect(connectHybridVsock(vsock.path, 1024, { timeoutMs: 2_000 })).rejects.toMatchObject({
      code: 'AGENT_PROTOCOL',
      message: expect.stringContaining('"NOPE"'),
    });
    expect(vsock.lines).toHaveLength(1);
  });

  it('stops when aborted', async () => {
    const vsock = await fakeVsock((conn) => conn.destroy());
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('VMM exited')), 50);
    await expect(connectHybridVsock(vsock.path, 1024, { timeoutMs: 5_000, signal: ac.signal })).rejects.toThrow('VMM exited');
  });
});
