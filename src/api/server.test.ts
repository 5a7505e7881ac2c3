import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_TOKEN, FAKE_VM_ID, fakeDeps, fakeVm, type FakeVm } from '../testing/fake-api-deps.js';
import { buildApp } from './app.js';
import { LINGER_MAX_BYTES } from './linger.js';

// The API on a real listening socket (in-memory VM): what Node's HTTP server
// does before Fastify sees a request (timeouts, oversized headers) and how an
// early error answer reaches a client that is still uploading.
const auth = { authorization: `Bearer ${FAKE_TOKEN}` };
const MIB = 1024 * 1024;

/** Sends raw bytes and collects everything the server answers until it closes (bounded by `ms`). */
function raw(port: number, send: (write: (s: string | Buffer) => void) => void, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${ms} ms; got ${Buffer.concat(got).toString().slice(0, 200)}`));
    }, ms);
    socket.on('data', (d) => got.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got).toString('latin1'));
    });
    socket.on('connect', () => send((s) => socket.write(s)));
  });
}

function envelopeOf(response: string): { status: number; error: { code: string; message: string } } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1]);
  const body = response.slice(response.indexOf('\r\n\r\n') + 4);
  return { status, error: JSON.parse(body).error };
}

describe('REST API on a listening socket (in-memory VM)', () => {
  let vm: FakeVm;
  let app: FastifyInstance;
  let base: string;
  let port: number;
  beforeAll(async () => {
    vm = fakeVm();
    app = await buildApp(fakeDeps(vm, { maxUploadBytes: 1 * MIB, requestTimeoutMs: 1500 }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    port = Number(new URL(base).port);
  });
  afterAll(async () => {
    await app.close();
  });

  it("answers a URL over the limit with a 414 envelope over a real socket (not Node's 431)", async () => {
    const res = await fetch(`${base}/v1/vms/${FAKE_VM_ID}/files?path=/${'a'.repeat(15 * 1024)}`, { headers: auth });
    expect(res.status).toBe(414);
    expect((await res.json()).error.code).toBe('URI_TOO_LONG');
  });

  it('answers a 20 MB upload over the limit with a readable 413, not a reset connection', async () => {
    const res = await fetch(`${base}/v1/vms/${FAKE_VM_ID}/files?path=/big`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(20 * 1000 * 1000, 7),
    });
    expect(res.status).toBe(413);
    expect((await res.json()).error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(vm.files.has('/big')).toBe(false);
  });

  it('lets a simple client send its whole 20 MB body and then read the 413 (lingering close, no EPIPE or reset)', async () => {
    const size = 20_000_000;
    const outcome = await new Promise<{ writeError: string; response: string }>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      const got: Buffer[] = [];
      let writeError = '';
      socket.on('data', (d) => got.push(d));
      socket.on('error', (e) => (writeError = String(e)));
      socket.on('close', () => resolve({ writeError, response: Buffer.concat(got).toString('latin1') }));
      socket.on('connect', async () => {
        socket.write(
          `PUT /v1/vms/${FAKE_VM_ID}/files?path=/raw HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${FAKE_TOKEN}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\n\r\n`,
        );
        const chunk = Buffer.alloc(64 * 1024, 1);
        for (let sent = 0; sent < size && !socket.destroyed; sent += chunk.length) {
          if (!socket.write(chunk.subarray(0, Math.min(chunk.length, size - sent))))
            await new Promise((r) => (socket.once('drain', r), socket.once('close', r)));
        }
      });
    });
    expect(outcome.writeError).toBe('');
    expect(envelopeOf(outcome.response)).toMatchObject({ status: 413, error: { code: 'PAYLOAD_TOO_LARGE' } });
  });

  it('stops reading a client that keeps sending after the 413 (bounded lingering)', async () => {
    const sent = await new Promise<number>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let total = 0;
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(total));
      socket.on('connect', async () => {
        socket.write(
          `PUT /v1/vms/${FAKE_VM_ID}/files?path=/endless HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${FAKE_TOKEN}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${2 ** 40}\r\n\r\n`,
        );
        const chunk = Buffer.alloc(256 * 1024, 2);
        while (!socket.destroyed) {
          total += chunk.length;
          if (!socket.write(chunk)) await new Promise((r) => (socket.once('drain', r), socket.once('close', r)));
        }
      });
    });
    // The daemon stops after LINGER_MAX_BYTES (checked every 20 ms, so loopback overshoots a little; socket
    // buffers hold some more). Unbounded, this client sends a gigabyte before the request timeout ends it.
    expect(sent).toBeLessThan(3 * LINGER_MAX_BYTES);
  });

  it('answers a chunked upload (no Content-Length) that grows past the limit with 413', async () => {
    const chunks = Array.from({ length: 40 }, () => Buffer.alloc(64 * 1024, 1));
    const res = await fetch(`${base}/v1/vms/${FAKE_VM_ID}/files?path=/chunked`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: Readable.toWeb(Readable.from(chunks)) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect((await res.json()).error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: expect.stringContaining('api.max_upload_bytes') });
  });

  it('streams an upload and a download of the same bytes', async () => {
    const bytes = createHash('sha512').update('seed').digest();
    const data = Buffer.concat(Array.from({ length: 8000 }, (_, i) => bytes.subarray(i % 64)));
    expect(data.length).toBeLessThan(1 * MIB);
    const put = await fetch(`${base}/v1/vms/${FAKE_VM_ID}/files?path=/same`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: data,
    });
    expect(put.status).toBe(204);
    vm.chunkBytes = 4096;
    const got = Buffer.from(await (await fetch(`${base}/v1/vms/${FAKE_VM_ID}/files?path=/same`, { headers: auth })).arrayBuffer());
    expect(got.equals(data)).toBe(true);
  });

  it('answers a client that stops sending its body with 408 REQUEST_TIMEOUT and closes', async () => {
    const response = await raw(port, (write) => {
      write(
        `POST /v1/vms/${FAKE_VM_ID}/exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${FAKE_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"cmd":`,
      );
    });
    const { status, error } = envelopeOf(response);
    expect(status).toBe(408);
    expect(error.code).toBe('REQUEST_TIMEOUT');
    expect(error.message).toMatch(/api\.request_timeout_ms/);
    expect(vm.execs).toHaveLength(0);
  });

  it('answers a client whose headers never finish with 408 too (slow headers hold no socket for long)', async () => {
    const response = await raw(port, (write) => write('GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: '));
    expect(envelopeOf(response)).toMatchObject({ status: 408, error: { code: 'REQUEST_TIMEOUT' } });
  });

  it('answers oversized headers with 431 and a malformed request with 400, both in the envelope', async () => {
    const big = envelopeOf(await raw(port, (write) => write(`GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`)));
    expect(big).toMatchObject({ status: 431, error: { code: 'REQUEST_HEADERS_TOO_LARGE' } });
    const bad = envelopeOf(await raw(port, (write) => write('NOT HTTP AT ALL\r\n\r\n')));
    expect(bad).toMatchObject({ status: 400, error: { code: 'INVALID_ARGUMENT' } });
  });

  it('still serves after all of that', async () => {
    const res = await fetch(`${base}/v1/vms/${FAKE_VM_ID}/exec`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ cmd: ['true'] }),
    });
    expect(res.status).toBe(200);
  });
});
