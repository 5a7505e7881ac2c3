import { createHash } from 'node:crypto';
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/index.js';
import { FAKE_TOKEN, FAKE_VM_ID, fakeDeps, fakeVm, type FakeVm } from '../../src/testing/fake-api-deps.js';

/**
 * A 1 GiB upload and a 1 GiB download through the HTTP layer on a real
 * socket, with the daemon's memory flat: the API streams, it never holds a
 * file. The client is a separate Node process, so the RSS measured here is
 * the daemon side's. The guest side is an in-memory VM that hashes what it is sent and
 * generates what is read (a real guest keeps files in RAM: its root is an
 * initramfs; test/hostile/file-stream.test.ts streams through a real one,
 * and api-fuzz.test.ts round-trips 24 MiB through the API into a real VM).
 * The figures are printed.
 */
const GIB = 1024 * 1024 * 1024;
const PIECE = 1024 * 1024;
/** The API may hold a few chunks per direction, never the file: 1/8 of it is far above a few chunks and far below the file. */
const MAX_RSS_GROWTH = 128 * 1024 * 1024;

function* pieces(total: number): Generator<Buffer> {
  const block = createHash('sha512').update('tfc').digest();
  const piece = Buffer.alloc(PIECE);
  for (let at = 0; at < PIECE; at += block.length) block.copy(piece, at);
  for (let sent = 0; sent < total; sent += PIECE) {
    // A counter in each piece keeps the stream from being one repeated block.
    const p = Buffer.from(piece.subarray(0, Math.min(PIECE, total - sent)));
    p.writeUInt32LE(sent / PIECE, 0);
    yield p;
  }
}

/**
 * A minimal HTTP client in a child Node process: PUT streams its stdin as a
 * chunked body and prints the status; GET streams the body to stdout and
 * exits 1 unless the status is 200.
 */
const CLIENT = `
const http = require('node:http');
const [method, url, token] = process.argv.slice(1);
const req = http.request(url, { method, headers: { authorization: 'Bearer ' + token, ...(method === 'PUT' ? { 'content-type': 'application/octet-stream' } : {}) } }, (res) => {
  if (method === 'PUT') { res.resume(); res.on('end', () => process.stdout.write(String(res.statusCode))); return; }
  if (res.statusCode !== 200) process.exitCode = 1;
  res.pipe(process.stdout);
});
req.on('error', (e) => { console.error(e.message); process.exitCode = 2; });
if (method === 'PUT') process.stdin.pipe(req); else req.end();
`;

function client(method: 'PUT' | 'GET', url: string): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['-e', CLIENT, method, url, FAKE_TOKEN], { stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Waits for a child to exit; resolves with its exit code and (bounded) output. */
async function collect(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout = (stdout + d).slice(-4096)));
  child.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-4096)));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

describe('1 GiB through the API with flat memory (in-memory VM)', () => {
  let vm: FakeVm;
  let app: FastifyInstance;
  let base: string;
  let rssMax = 0;
  let sampler: NodeJS.Timeout;
  beforeAll(async () => {
    vm = fakeVm();
    app = await buildApp(fakeDeps(vm, { maxUploadBytes: 2 * GIB }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 20);
  });
  afterAll(async () => {
    clearInterval(sampler);
    await app.close();
  });

  it('uploads 1 GiB (streamed request body) and downloads 1 GiB (streamed answer) with the SHA-256 intact', async () => {
    const expected = createHash('sha256');
    for (const p of pieces(GIB)) expected.update(p);
    const digest = expected.digest('hex');
    let guestDigest = '';
    let guestBytes = 0;
    vm.writeFileFrom = async (_path, source) => {
      const h = createHash('sha256');
      for await (const chunk of source) {
        h.update(chunk);
        guestBytes += chunk.length;
      }
      guestDigest = h.digest('hex');
      return { bytes: guestBytes };
    };
    vm.readFileChunks = async function* () {
      yield* pieces(GIB);
    };
    global.gc?.();
    const rssStart = process.memoryUsage().rss;
    rssMax = rssStart;

    // The client is a Node process of its own, so this process's memory is the daemon's alone.
    let t = performance.now();
    const up = client('PUT', `${base}/v1/vms/${FAKE_VM_ID}/files?path=/big`);
    const upOut = collect(up);
    for (const p of pieces(GIB)) if (!up.stdin.write(p)) await once(up.stdin, 'drain');
    up.stdin.end();
    const upResult = await upOut;
    const uploadMs = performance.now() - t;
    expect(upResult, 'upload client').toMatchObject({ code: 0, stdout: '204' });
    expect(guestBytes).toBe(GIB);
    expect(guestDigest).toBe(digest);
    const afterUpload = rssMax;

    t = performance.now();
    const down = client('GET', `${base}/v1/vms/${FAKE_VM_ID}/files?path=/big`);
    const got = createHash('sha256');
    let gotBytes = 0;
    const downDone = once(down, 'close');
    for await (const chunk of down.stdout as AsyncIterable<Buffer>) {
      got.update(chunk);
      gotBytes += chunk.length;
    }
    expect((await downDone)[0], 'download client exit code').toBe(0);
    const downloadMs = performance.now() - t;
    expect(gotBytes).toBe(GIB);
    expect(got.digest('hex')).toBe(digest);

    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    console.log(
      `[api-stream] 1 GiB up in ${(uploadMs / 1000).toFixed(1)} s, down in ${(downloadMs / 1000).toFixed(1)} s; ` +
        `RSS ${mib(rssStart)} MiB at start, peak +${mib(afterUpload - rssStart)} MiB during the upload, +${mib(rssMax - rssStart)} MiB overall`,
    );
    expect(rssMax - rssStart).toBeLessThan(MAX_RSS_GROWTH);
  }, 600_000);
});
