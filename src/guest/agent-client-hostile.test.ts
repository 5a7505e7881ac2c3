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
import { CONTROL_REPLY_MAX_BYTES, base64Length } from './agent-protocol.js';

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
    const p = await peer((_req, send) => send(header(CONTROL_REPLY_MAX_BYTES + 1)));
    await expectViolation(p, p.client.ping(), new RegExp(`more than the ${CONTROL_REPLY_MAX_BYTES}-byte limit`));
  });

  it('refuses a header announcing 2 GiB without waiting for it', async () => {
    const p = await peer((_req, send) => send(header(0x7fffffff)));
    await expectViolation(p, p.client.exec({ argv: ['true'], maxOutputBytes: 8 * 1024 * 1024 }), /frame of 2147483647 bytes/);
  });

  it('sizes the exec reply limit from maxOutputBytes', async () => {
    const max = 1000;
    const limit = 2 * base64Length(max) + CONTROL_REPLY_MAX_BYTES;
    const p = await peer((req, send) => {
      const big = 'A'.repeat(limit); // valid base64, far more than asked for
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
});
