/**
 * AgentClient against a hostile guest: a scripted peer on a Unix socket that
 * sends what a root user inside the guest could write to the agent port.
 * Every violation must close the channel, reject pending calls with
 * AGENT_PROTOCOL and be reported once through onFatal.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProtocolError, type TfcError } from '../errors/index.js';
import { AgentClient, MAX_AGENT_REQUESTS_IN_FLIGHT, connectUnix } from './agent-client.js';
import { FrameDecoder, encodeFrame } from './agent-frame.js';
import { CONTROL_REPLY_MAX_BYTES, EVENT_FRAME_MAX_BYTES, base64Length } from './agent-protocol.js';

type Send = (message: object | Buffer) => boolean;

let dir = '';
const servers = new Set<net.Server>();
const sockets = new Set<net.Socket>();
const clients = new Set<AgentClient>();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tfc-agent-hostile-'));
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of sockets) s.destroy();
  await Promise.all([...servers].map((s) => new Promise((r) => s.close(r))));
  rmSync(dir, { recursive: true, force: true });
});

interface Peer {
  client: AgentClient;
  fatal: TfcError[];
  /** Resolves when the peer's end of the connection closed (the host hung up). */
  hungUp: Promise<void>;
}

/** A fake guest: `onConnect` runs once, `reply` for every request. */
async function peer(reply: (request: Record<string, unknown>, send: Send) => void, onConnect?: (send: Send, socket: net.Socket) => void): Promise<Peer> {
  const path = join(dir, `peer-${servers.size}.sock`);
  let hangUp!: () => void;
  const hungUp = new Promise<void>((r) => (hangUp = r));
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', hangUp);
    const send: Send = (m) => !socket.destroyed && socket.write(Buffer.isBuffer(m) ? m : encodeFrame(m, 64 * 1024 * 1024));
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const request of decoder.push(chunk)) reply(request, send);
    });
    onConnect?.(send, socket);
  });
  servers.add(server);
  await new Promise<void>((r) => server.listen(path, r));
  const client = await connectUnix(path, { timeoutMs: 2_000 });
  clients.add(client);
  const fatal: TfcError[] = [];
  client.onFatal((e) => fatal.push(e));
  return { client, fatal, hungUp };
}

function header(length: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(length);
  return h;
}

const ok = (id: unknown, result: object) => ({ v: 1, id, ok: true, result });

async function expectViolation(p: Peer, call: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgentProtocolError);
  expect((err as Error).message).toMatch(message);
  await p.hungUp;
  expect(p.client.closed).toBe(true);
  expect(p.fatal).toHaveLength(1);
  expect(p.fatal[0]).toBe(err);
}

describe('AgentClient against a hostile guest', () => {
  it('bounds requests in flight: beyond the limit a call fails at once with VM_BUSY and the channel stays usable', async () => {
    let answer = false;
    const held: Array<Record<string, unknown>> = [];
    let sendLater: Send = () => false;
    const p = await peer((req, send) => {
      sendLater = send;
      if (answer) send(ok(req.id, { uptime_ms: 1 }));
      else held.push(req);
    });
    const calls = Array.from({ length: MAX_AGENT_REQUESTS_IN_FLIGHT }, () => p.client.ping({ timeoutMs: 30_000 }));
    await expect(p.client.ping({ timeoutMs: 30_000 })).rejects.toMatchObject({ code: 'VM_BUSY', status: 429 });
    while (held.length < MAX_AGENT_REQUESTS_IN_FLIGHT) await new Promise((r) => setTimeout(r, 5));
    for (const req of held) sendLater(ok(req.id, { uptime_ms: 1 }));
    await Promise.all(calls);
    answer = true;
    expect(await p.client.ping()).toEqual({ uptimeMs: 1 });
    expect(p.fatal).toEqual([]);
  });

  it('closes the channel on a reply to an id it never sent, failing every pending call', async () => {
    const p = await peer((req, send) => {
      if (req.op === 'hello') send(ok(Number(req.id) + 1_000_000, { uptime_ms: 1 }));
    });
    const slow = p.client.ping({ timeoutMs: 5_000 }).catch((e: unknown) => e);
    await expectViolation(p, p.client.hello(), /reply to id \d+, which this host never sent/);
    expect(await slow).toBeInstanceOf(AgentProtocolError);
    await expect(p.client.ping()).rejects.toThrow(AgentProtocolError);
  });

  it('treats a second reply to an answered id as unknown', async () => {
    const p = await peer((req, send) => {
      send(ok(req.id, { uptime_ms: 1 }));
      setTimeout(() => send(ok(req.id, { uptime_ms: 2 })), 20);
    });
    expect(await p.client.ping()).toEqual({ uptimeMs: 1 });
    await p.hungUp;
    expect(p.fatal[0]?.message).toMatch(/already been answered/);
  });

  it('closes the channel on frames nobody asked for, even an error with id 0', async () => {
    const p = await peer(
      () => undefined,
      (send) => send({ v: 1, id: 0, ok: false, error: { code: 'BAD_REQUEST', message: 'x' } }),
    );
    await p.hungUp;
    expect(p.fatal[0]?.message).toMatch(/no request was unanswered/);
    // A listener registered afterwards still hears about it.
    const late = await new Promise<TfcError>((r) => p.client.onFatal(r));
    expect(late).toBe(p.fatal[0]);
  });

  it('stops a flood of frames at the first one and hangs up', async () => {
    let sent = 0;
    const p = await peer(
      () => undefined,
      (send, socket) => {
        const frame = encodeFrame(ok(12345, { uptime_ms: 1 }));
        const pump = () => {
          while (!socket.destroyed && send(frame)) if (++sent > 100_000) return;
          if (!socket.destroyed) socket.once('drain', pump);
        };
        pump();
      },
    );
    await p.hungUp;
    expect(p.fatal).toHaveLength(1);
    expect(p.client.closed).toBe(true);
  });

  it('refuses an oversized control reply at its header, before buffering the body', async () => {
    // Events may come at any time, so the smallest limit is that of an event frame.
    const limit = Math.max(CONTROL_REPLY_MAX_BYTES, EVENT_FRAME_MAX_BYTES);
    const p = await peer((_req, send) => send(header(limit + 1)));
    await expectViolation(p, p.client.ping(), new RegExp(`more than the ${limit}-byte limit`));
  });

  it('refuses a header announcing 2 GiB without waiting for it', async () => {
    const p = await peer((_req, send) => send(header(0x7fffffff)));
    await expectViolation(p, p.client.exec({ argv: ['true'], maxOutputBytes: 8 * 1024 * 1024 }), /frame of 2147483647 bytes/);
  });

  it('sizes the exec reply limit from maxOutputBytes', async () => {
    const max = 1000;
    const limit = 2 * base64Length(max) + CONTROL_REPLY_MAX_BYTES;
    const p = await peer((req, send) => {
      const big = 'A'.repeat(Math.max(limit, EVENT_FRAME_MAX_BYTES)); // valid base64, far more than asked for
      send(
        ok(req.id, {
          exit_code: 0,
          signal: null,
          stdout_b64: big,
          stderr_b64: '',
          stdout_truncated: false,
          stderr_truncated: false,
          timed_out: false,
          duration_ms: 1,
        }),
      );
    });
    await expectViolation(p, p.client.exec({ argv: ['x'], maxOutputBytes: max }), /more than the \d+-byte limit/);
  });

  it('keeps no more exec output than asked for when the guest ignores the limit within its frame', async () => {
    const p = await peer((req, send) => {
      const out = Buffer.alloc(5000, 'o').toString('base64');
      send(
        ok(req.id, {
          exit_code: 0,
          signal: null,
          stdout_b64: out,
          stderr_b64: out,
          stdout_truncated: false,
          stderr_truncated: false,
          timed_out: false,
          duration_ms: 1,
        }),
      );
    });
    const r = await p.client.exec({ argv: ['x'], maxOutputBytes: 10_000 });
    expect(r.stdout.length).toBe(5000);
    expect(r.stdoutTruncated).toBe(false);
    const p2 = await peer((req, send) => {
      const out = Buffer.alloc(20_000, 'o').toString('base64');
      send(
        ok(req.id, {
          exit_code: 0,
          signal: null,
          stdout_b64: out,
          stderr_b64: '',
          stdout_truncated: false,
          stderr_truncated: false,
          timed_out: false,
          duration_ms: 1,
        }),
      );
    });
    const cut = await p2.client.exec({ argv: ['x'], maxOutputBytes: 15_000 });
    expect(cut.stdout.length).toBe(15_000);
    expect(cut.stdoutTruncated).toBe(true);
  });

  it('closes the channel when a chunked read gets more than it asked for, or no progress', async () => {
    const p = await peer((req, send) =>
      send(ok(req.id, { data_b64: Buffer.alloc(200).toString('base64'), size: 1000, truncated: true, offset: req.offset ?? 0 })),
    );
    const read = async () => {
      for await (const c of p.client.readFileChunks('/x', { chunkBytes: 100 })) void c;
    };
    await expectViolation(p, read(), /carried 200 bytes \(asked for at most 100/);

    const stuck = await peer((req, send) => send(ok(req.id, { data_b64: '', size: 10, truncated: true, offset: req.offset ?? 0 })));
    const readStuck = async () => {
      for await (const c of stuck.client.readFileChunks('/x')) void c;
    };
    await expectViolation(stuck, readStuck(), /carried 0 bytes/);
  });

  it('says to rebuild the image when the agent ignores read offsets', async () => {
    const p = await peer((req, send) => send(ok(req.id, { data_b64: Buffer.alloc(10).toString('base64'), size: 20, truncated: true })));
    const chunks: Buffer[] = [];
    const read = async () => {
      for await (const c of p.client.readFileChunks('/old', { chunkBytes: 10 })) chunks.push(c);
    };
    await expect(read()).rejects.toThrow(/predates chunked reads: rebuild the guest image/);
    expect(chunks).toHaveLength(1);
  });

  it('does not report an ordinary close as fatal', async () => {
    const p = await peer((req, send) => send(ok(req.id, { uptime_ms: 3 })));
    expect(await p.client.ping()).toEqual({ uptimeMs: 3 });
    p.client.close();
    await p.hungUp;
    expect(p.fatal).toEqual([]);
    expect(p.client.fatal).toBeUndefined();
  });

  describe('process events', () => {
    const execResult = {
      exit_code: 0,
      signal: null,
      stdout_b64: '',
      stderr_b64: '',
      stdout_truncated: false,
      stderr_truncated: false,
      timed_out: false,
      duration_ms: 1,
    };
    const output = (pid: number, data: Buffer) => ({ v: 1, event: 'output', pid, stream: 'stdout', data_b64: data.toString('base64') });

    it('delivers events for a pid this connection never spawned, in order, and stays open', async () => {
      const p = await peer(
        (req, send) => send(ok(req.id, { uptime_ms: 1 })),
        (send) => {
          send(output(4242, Buffer.from('from an earlier connection')));
          send({ v: 1, event: 'exit', pid: 4242, exit_code: null, signal: 'SIGKILL', duration_ms: 5 });
        },
      );
      const events: unknown[] = [];
      p.client.onProcessEvent((e) => events.push(e));
      await p.client.ping();
      expect(events).toEqual([
        { type: 'stdout', pid: 4242, data: Buffer.from('from an earlier connection') },
        { type: 'exit', pid: 4242, exitCode: null, signal: 'SIGKILL', durationMs: 5 },
      ]);
      expect(p.fatal).toEqual([]);
    });

    it('stops delivering to a listener once unsubscribed, and survives a listener that throws', async () => {
      let send: Send = () => false;
      const p = await peer((req, s) => {
        send = s;
        s(ok(req.id, { uptime_ms: 1 }));
      });
      const seen: number[] = [];
      const stop = p.client.onProcessEvent((e) => seen.push(e.pid));
      p.client.onProcessEvent(() => {
        throw new Error('listener bug');
      });
      await p.client.ping();
      send(output(1, Buffer.from('a')));
      await p.client.ping();
      stop();
      send(output(2, Buffer.from('b')));
      await p.client.ping();
      expect(seen).toEqual([1]);
      expect(p.client.closed).toBe(false);
    });

    it('refuses an unknown event type', async () => {
      const p = await peer((req, send) => {
        send({ v: 1, event: 'coredump', pid: 1 });
        send(ok(req.id, { uptime_ms: 1 }));
      });
      await expectViolation(p, p.client.ping(), /unknown event "coredump"/);
    });

    it('refuses a malformed event', async () => {
      const p = await peer((req, send) => send({ v: 1, event: 'output', pid: 7, stream: 'stdin', data_b64: '' }));
      await expectViolation(p, p.client.ping(), /malformed output event: 'stream'/);
      const q = await peer((req, send) => send({ v: 1, event: 'exit', pid: 7, exit_code: 'zero', signal: null, duration_ms: 1 }));
      await expectViolation(q, q.client.ping(), /malformed exit event: invalid 'exit_code'/);
    });

    it('refuses an event frame over its cap even while a larger exec reply is allowed', async () => {
      const p = await peer((req, send) => {
        if (req.op === 'exec') send(output(9, Buffer.alloc(100 * 1024)));
      });
      await expectViolation(
        p,
        p.client.exec({ argv: ['x'], maxOutputBytes: 8 * 1024 * 1024 }),
        new RegExp(`more than the ${EVENT_FRAME_MAX_BYTES}-byte limit for events`),
      );
    });

    it('refuses an oversized event at its header when no large reply is pending', async () => {
      const p = await peer(
        () => undefined,
        (send) => send(header(EVENT_FRAME_MAX_BYTES + 1)),
      );
      await p.hungUp;
      expect(p.fatal[0]?.message).toMatch(/more than the \d+-byte limit/);
    });

    it('accepts an exec reply after replies to later requests (exec is answered when it ends)', async () => {
      let execReq: Record<string, unknown> | undefined;
      let sendLater: Send = () => false;
      const p = await peer((req, send) => {
        sendLater = send;
        if (req.op === 'exec') execReq = req;
        else if (req.op === 'ping') send(ok(req.id, { uptime_ms: 2 }));
      });
      const exec = p.client.exec({ argv: ['sleep', '1'] });
      expect(await p.client.ping()).toEqual({ uptimeMs: 2 });
      expect(await p.client.ping()).toEqual({ uptimeMs: 2 });
      sendLater(ok(execReq!.id, execResult));
      expect((await exec).exitCode).toBe(0);
      // An error the agent could not attribute goes to the oldest request that is not a running exec.
      const exec2 = p.client.exec({ argv: ['sleep', '1'] });
      await p.client.ping();
      const held = p.client.hello().catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 20));
      sendLater({ v: 1, id: 0, ok: false, error: { code: 'BAD_REQUEST', message: 'unreadable' } });
      expect(await held).toMatchObject({ code: 'AGENT_ERROR', details: { agent_code: 'BAD_REQUEST' } });
      sendLater(ok(execReq!.id, execResult));
      expect((await exec2).exitCode).toBe(0);
      expect(p.fatal).toEqual([]);
    });
  });
});
