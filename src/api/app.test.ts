import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isErrorCode } from '../errors/index.js';
import { FAKE_TOKEN, FAKE_VM_ID, fakeDeps, fakeVm, type FakeVm } from '../testing/fake-api-deps.js';
import { buildApp } from './app.js';
import { MAX_ARG_BYTES, MAX_ARGV_ITEMS, MAX_JSON_BODY_BYTES, MAX_PATH_BYTES } from './limits.js';

// The HTTP layer against an in-memory VM: every error leaves as the envelope
// with a registered code, and bad input never reaches the VM.
const auth = { authorization: `Bearer ${FAKE_TOKEN}` };
const execUrl = `/v1/vms/${FAKE_VM_ID}/exec`;

function expectEnvelope(
  res: { statusCode: number; body: string },
  status: number,
  code: string,
): { code: string; message: string; details?: Record<string, unknown> } {
  expect(res.statusCode, res.body).toBe(status);
  const body = JSON.parse(res.body) as { error: { code: string; message: string; details?: Record<string, unknown> } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(isErrorCode(body.error.code)).toBe(true);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  return body.error;
}

describe('REST API errors and bounds (in-memory VM)', () => {
  let vm: FakeVm;
  let app: FastifyInstance;
  beforeEach(async () => {
    vm = fakeVm();
    app = await buildApp(fakeDeps(vm, { maxExecTimeoutMs: 120_000 }));
  });
  afterEach(async () => {
    await app.close();
  });
  const exec = (body: unknown) => app.inject({ method: 'POST', url: execUrl, headers: auth, payload: body as object });

  it("answers a VM id longer than the router takes with 414 URI_TOO_LONG, not Fastify's own body", async () => {
    const res = await app.inject({ method: 'GET', url: `/v1/vms/${'a'.repeat(5000)}`, headers: auth });
    expectEnvelope(res, 414, 'URI_TOO_LONG');
  });

  it('answers an overlong URL with 414 and quotes only its start in a 404', async () => {
    expectEnvelope(await app.inject({ method: 'GET', url: `/v1/x?${'q'.repeat(20_000)}`, headers: auth }), 414, 'URI_TOO_LONG');
    const err = expectEnvelope(await app.inject({ method: 'GET', url: `/v1/${'n'.repeat(1000)}`, headers: auth }), 404, 'NOT_FOUND');
    expect(err.message.length).toBeLessThan(300);
  });

  it('answers a malformed percent-encoding with the envelope', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/vms/%E0%A4%A', headers: auth });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expect(isErrorCode(JSON.parse(res.body).error.code)).toBe(true);
  });

  it('needs the token, with the envelope and WWW-Authenticate', async () => {
    const res = await app.inject({ method: 'POST', url: execUrl, payload: { cmd: ['true'] } });
    expectEnvelope(res, 401, 'UNAUTHORIZED');
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(vm.execs).toHaveLength(0);
  });

  it('answers a body that is not JSON with 415, bad JSON and empty JSON with 400', async () => {
    const text = await app.inject({ method: 'POST', url: execUrl, headers: { ...auth, 'content-type': 'text/plain' }, payload: 'echo hi' });
    expect(expectEnvelope(text, 415, 'UNSUPPORTED_MEDIA_TYPE').message).toMatch(/application\/json/);
    const bad = await app.inject({ method: 'POST', url: execUrl, headers: { ...auth, 'content-type': 'application/json' }, payload: '{"cmd": [' });
    expectEnvelope(bad, 400, 'INVALID_ARGUMENT');
    const empty = await app.inject({ method: 'POST', url: execUrl, headers: { ...auth, 'content-type': 'application/json' }, payload: '' });
    expectEnvelope(empty, 400, 'INVALID_ARGUMENT');
    const proto = await app.inject({
      method: 'POST',
      url: execUrl,
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"cmd":["true"],"__proto__":{"x":1}}',
    });
    expectEnvelope(proto, 400, 'INVALID_ARGUMENT');
    expect(vm.execs).toHaveLength(0);
  });

  it('answers a JSON body over the limit with 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await exec({ cmd: ['cat'], stdin: 'x'.repeat(MAX_JSON_BODY_BYTES) });
    expect(expectEnvelope(res, 413, 'PAYLOAD_TOO_LARGE').details).toEqual({ limit_bytes: MAX_JSON_BODY_BYTES });
    expect(res.headers.connection).toBe('close');
  });

  it.each([
    [{ cmd: ['ec\u0000ho'] }, 'cmd[0]'],
    [{ cmd: ['echo', 'a\u0000b'] }, 'cmd[1]'],
    [{ cmd: ['env'], env: { 'A\u0000B': 'x' } }, 'env["A\\u0000B"] (name)'],
    [{ cmd: ['env'], env: { A: 'x\u0000y' } }, 'env["A"]'],
    [{ cmd: ['pwd'], cwd: '/tmp\u0000/x' }, 'cwd'],
  ])('refuses NUL bytes with 400 naming the field: %j', async (body, field) => {
    const err = expectEnvelope(await exec(body), 400, 'INVALID_ARGUMENT');
    expect(err.message).toContain(field);
    expect(err.message).toMatch(/NUL/);
    expect(err.details).toMatchObject({ field });
    expect(vm.execs).toHaveLength(0);
  });

  it('bounds argv, env and paths', async () => {
    expect(expectEnvelope(await exec({ cmd: Array(MAX_ARGV_ITEMS + 1).fill('x') }), 400, 'INVALID_ARGUMENT').message).toMatch(/cmd/);
    expect(expectEnvelope(await exec({ cmd: ['echo', 'x'.repeat(MAX_ARG_BYTES + 1)] }), 400, 'INVALID_ARGUMENT').message).toMatch(/cmd\[1\].*MAX_ARG_STRLEN/);
    expect(expectEnvelope(await exec({ cmd: ['echo', ...Array(10).fill('y'.repeat(120_000))] }), 400, 'INVALID_ARGUMENT').message).toMatch(/together/);
    expect(expectEnvelope(await exec({ cmd: ['env'], env: { 'A=B': '1' } }), 400, 'INVALID_ARGUMENT').message).toMatch(/=/);
    expect(
      expectEnvelope(await exec({ cmd: ['env'], env: Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`V${i}`, '1'])) }), 400, 'INVALID_ARGUMENT')
        .message,
    ).toMatch(/env/);
    expect(expectEnvelope(await exec({ cmd: ['pwd'], cwd: `/${'d'.repeat(MAX_PATH_BYTES)}` }), 400, 'INVALID_ARGUMENT').message).toMatch(/cwd.*PATH_MAX/);
    expect(expectEnvelope(await exec({ cmd: [''] }), 400, 'INVALID_ARGUMENT').message).toMatch(/cmd\[0\]/);
    expect(expectEnvelope(await exec({ cmd: 'echo hi' }), 400, 'INVALID_ARGUMENT').message).toMatch(/cmd/);
    expect(expectEnvelope(await exec({ cmd: ['true'], extra: 1 }), 400, 'INVALID_ARGUMENT').message).toMatch(/additional/);
    expect(vm.execs).toHaveLength(0);
  });

  it('gives an exec without a timeout, or with 0, the default (never "no limit") and refuses one above the maximum', async () => {
    expect((await exec({ cmd: ['true'] })).statusCode).toBe(200);
    expect((await exec({ cmd: ['true'], timeout_ms: 0 })).statusCode).toBe(200);
    expect((await exec({ cmd: ['true'], timeout_ms: 120_000 })).statusCode).toBe(200);
    expect(vm.execs.map((e) => e.timeoutMs)).toEqual([30_000, 30_000, 120_000]);
    const over = expectEnvelope(await exec({ cmd: ['true'], timeout_ms: 120_001 }), 400, 'INVALID_ARGUMENT');
    expect(over.message).toMatch(/120000.*api\.max_exec_timeout_ms/);
    expect(over.details).toMatchObject({ field: 'timeout_ms', max: 120_000 });
    expectEnvelope(await exec({ cmd: ['true'], timeout_ms: 1e300 }), 400, 'INVALID_ARGUMENT');
    expectEnvelope(await exec({ cmd: ['true'], timeout_ms: -1 }), 400, 'INVALID_ARGUMENT');
    expectEnvelope(await exec({ cmd: ['true'], timeout_ms: 1.5 }), 400, 'INVALID_ARGUMENT');
    expectEnvelope(await exec({ cmd: ['true'], timeout_ms: '100' }), 400, 'INVALID_ARGUMENT');
    expect(vm.execs).toHaveLength(3);
  });

  it('returns exec output as UTF-8 text by default and as exact bytes with output_encoding base64', async () => {
    const bytes = Buffer.from([0xff, 0x00, 0xfe, 0x41, 0x80]);
    vm.nextExec = { stdout: bytes, stderr: Buffer.from('é\n') };
    const text = JSON.parse((await exec({ cmd: ['x'] })).body);
    expect(text).toMatchObject({ stdout: '\ufffd\u0000\ufffdA\ufffd', stderr: 'é\n', output_encoding: 'utf8' });
    const b64 = JSON.parse((await exec({ cmd: ['x'], output_encoding: 'base64' })).body);
    expect(b64.output_encoding).toBe('base64');
    expect(Buffer.from(b64.stdout, 'base64').equals(bytes)).toBe(true);
    expect(Buffer.from(b64.stderr, 'base64').toString()).toBe('é\n');
    expectEnvelope(await exec({ cmd: ['x'], output_encoding: 'latin1' }), 400, 'INVALID_ARGUMENT');
  });

  it('uploads and downloads raw bytes, and refuses bad paths and media types', async () => {
    const bytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));
    vm.chunkBytes = 1000;
    const url = `/v1/vms/${FAKE_VM_ID}/files?path=/root/a.bin`;
    const put = await app.inject({ method: 'PUT', url: `${url}&mode=600`, headers: { ...auth, 'content-type': 'application/octet-stream' }, payload: bytes });
    expect(put.statusCode, put.body).toBe(204);
    const get = await app.inject({ method: 'GET', url, headers: auth });
    expect(get.statusCode).toBe(200);
    expect(get.headers['content-type']).toBe('application/octet-stream');
    expect(get.rawPayload.equals(bytes)).toBe(true);
    const missing = await app.inject({ method: 'GET', url: `/v1/vms/${FAKE_VM_ID}/files?path=/nope`, headers: auth });
    expect(expectEnvelope(missing, 502, 'AGENT_ERROR').details).toMatchObject({ agent_code: 'FILE_NOT_FOUND' });

    const json = await app.inject({ method: 'PUT', url, headers: auth, payload: { data: 'x' } });
    expectEnvelope(json, 415, 'UNSUPPORTED_MEDIA_TYPE');
    const nul = await app.inject({
      method: 'PUT',
      url: `/v1/vms/${FAKE_VM_ID}/files?path=/root/a%00b`,
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      payload: bytes,
    });
    expect(expectEnvelope(nul, 400, 'INVALID_ARGUMENT').message).toMatch(/path.*NUL/);
    const rel = await app.inject({ method: 'GET', url: `/v1/vms/${FAKE_VM_ID}/files?path=root/a`, headers: auth });
    expectEnvelope(rel, 400, 'INVALID_ARGUMENT');
    const twice = await app.inject({ method: 'GET', url: `${url}&path=/x`, headers: auth });
    expectEnvelope(twice, 400, 'INVALID_ARGUMENT');
    const long = await app.inject({ method: 'GET', url: `/v1/vms/${FAKE_VM_ID}/files?path=/${'p'.repeat(MAX_PATH_BYTES)}`, headers: auth });
    expect(expectEnvelope(long, 400, 'INVALID_ARGUMENT').message).toMatch(/PATH_MAX/);
  });
});

describe('REST API upload limit (in-memory VM)', () => {
  it('answers an upload whose Content-Length is over api.max_upload_bytes with 413 before reading it', async () => {
    const vm = fakeVm();
    const app = await buildApp(fakeDeps(vm, { maxUploadBytes: 1000 }));
    try {
      const res = await app.inject({
        method: 'PUT',
        url: `/v1/vms/${FAKE_VM_ID}/files?path=/a`,
        headers: { ...auth, 'content-type': 'application/octet-stream' },
        payload: Buffer.alloc(1001),
      });
      expect(expectEnvelope(res, 413, 'PAYLOAD_TOO_LARGE').details).toEqual({ limit_bytes: 1000 });
      expect(vm.files.size).toBe(0);
      const ok = await app.inject({
        method: 'PUT',
        url: `/v1/vms/${FAKE_VM_ID}/files?path=/a`,
        headers: { ...auth, 'content-type': 'application/octet-stream' },
        payload: Buffer.alloc(1000, 1),
      });
      expect(ok.statusCode).toBe(204);
      expect(vm.files.get('/a')).toEqual(Buffer.alloc(1000, 1));
    } finally {
      await app.close();
    }
  });
});

describe('REST API file operations (in-memory VM)', () => {
  let vm: FakeVm;
  let app: FastifyInstance;
  const base = `/v1/vms/${FAKE_VM_ID}/files`;
  beforeEach(async () => {
    vm = fakeVm();
    app = await buildApp(fakeDeps(vm));
  });
  afterEach(async () => {
    await app.close();
  });
  const mkdir = (body: unknown) => app.inject({ method: 'POST', url: `${base}/mkdir`, headers: auth, payload: body as object });

  it('makes, lists, stats and removes directories', async () => {
    const made = await mkdir({ path: '/work/src', parents: true, mode: '700' });
    expect(made.statusCode, made.body).toBe(200);
    expect(made.json()).toEqual({ path: '/work/src', created: true });
    expect((await mkdir({ path: '/work/src', parents: true })).json()).toEqual({ path: '/work/src', created: false });
    vm.files.set('/work/a.txt', Buffer.from('hello'));

    const list = await app.inject({ method: 'GET', url: `${base}/list?path=/work`, headers: auth });
    expect(list.statusCode, list.body).toBe(200);
    expect(list.json()).toEqual({
      path: '/work',
      entries: [
        { name: 'a.txt', type: 'file', size: 5, mode: 0o644, mtime_ms: 0 },
        { name: 'src', type: 'dir', size: 4096, mode: 0o755, mtime_ms: 0 },
      ],
      truncated: false,
    });
    const capped = await app.inject({ method: 'GET', url: `${base}/list?path=/work&max_entries=1`, headers: auth });
    expect(capped.json()).toMatchObject({ entries: [{ name: 'a.txt' }], truncated: true });

    const stat = await app.inject({ method: 'GET', url: `${base}/stat?path=/work/a.txt`, headers: auth });
    expect(stat.json()).toEqual({ path: '/work/a.txt', type: 'file', size: 5, mode: 0o644, uid: 0, gid: 0, mtime_ms: 0, symlink_target: null });

    const notEmpty = await app.inject({ method: 'DELETE', url: `${base}?path=/work`, headers: auth });
    expect(expectEnvelope(notEmpty, 502, 'AGENT_ERROR').details).toMatchObject({ agent_code: 'FILE_ERROR' });
    const rm = await app.inject({ method: 'DELETE', url: `${base}?path=/work&recursive=true`, headers: auth });
    expect(rm.statusCode, rm.body).toBe(200);
    expect(rm.json()).toEqual({ path: '/work', removed: 3 });
    expect(vm.files.size).toBe(0);
    const gone = await app.inject({ method: 'GET', url: `${base}/stat?path=/work`, headers: auth });
    expect(expectEnvelope(gone, 502, 'AGENT_ERROR').details).toMatchObject({ agent_code: 'FILE_NOT_FOUND' });
  });

  it('answers agent refusals and bad input in the error envelope, before reaching the VM', async () => {
    expect(expectEnvelope(await mkdir({ path: '/x/y' }), 502, 'AGENT_ERROR').details).toMatchObject({ agent_code: 'FILE_NOT_FOUND' });
    await mkdir({ path: '/x' });
    expect(expectEnvelope(await mkdir({ path: '/x' }), 502, 'AGENT_ERROR').details).toMatchObject({ agent_code: 'FILE_EXISTS' });
    expectEnvelope(await mkdir({ path: 'rel' }), 400, 'INVALID_ARGUMENT');
    expectEnvelope(await mkdir({ path: '/a', mode: '999' }), 400, 'INVALID_ARGUMENT');
    expectEnvelope(await mkdir({ path: '/a', extra: 1 }), 400, 'INVALID_ARGUMENT');
    expect(expectEnvelope(await mkdir({ path: '/a\u0000b' }), 400, 'INVALID_ARGUMENT').message).toMatch(/path.*NUL/);
    expect(vm.dirs.has('/a')).toBe(false);

    const get = (url: string) => app.inject({ method: 'GET', url, headers: auth });
    expect(expectEnvelope(await get(`${base}/list?path=/nope`), 502, 'AGENT_ERROR').details).toMatchObject({ agent_code: 'FILE_NOT_FOUND' });
    expect(expectEnvelope(await get(`${base}/list?path=/&max_entries=0`), 400, 'INVALID_ARGUMENT').message).toMatch(/max_entries must be between 1 and 10000/);
    expectEnvelope(await get(`${base}/list?path=/&max_entries=20000`), 400, 'INVALID_ARGUMENT');
    expectEnvelope(await get(`${base}/list?path=/&max_entries=-1`), 400, 'INVALID_ARGUMENT');
    expectEnvelope(await get(`${base}/stat?path=/a%00b`), 400, 'INVALID_ARGUMENT');
    expect(expectEnvelope(await get(`${base}/stat?path=/${'p'.repeat(MAX_PATH_BYTES)}`), 400, 'INVALID_ARGUMENT').message).toMatch(/PATH_MAX/);
    expectEnvelope(await get(`${base}/stat`), 400, 'INVALID_ARGUMENT');

    const del = (query: string) => app.inject({ method: 'DELETE', url: `${base}?${query}`, headers: auth });
    expectEnvelope(await del('path=/x&recursive=yes'), 400, 'INVALID_ARGUMENT');
    expectEnvelope(await del('path=x'), 400, 'INVALID_ARGUMENT');
    expect(expectEnvelope(await del('path=/&recursive=true'), 502, 'AGENT_ERROR').details).toMatchObject({ agent_code: 'BAD_REQUEST' });
    expect(expectEnvelope(await del('path=/missing'), 502, 'AGENT_ERROR').details).toMatchObject({ agent_code: 'FILE_NOT_FOUND' });
    expect(vm.dirs.has('/x')).toBe(true);

    const other = await app.inject({ method: 'GET', url: `/v1/vms/vm-aaaaaaaaaaaa/files/list?path=/`, headers: auth });
    expectEnvelope(other, 404, 'VM_NOT_FOUND');
    const noAuth = await app.inject({ method: 'GET', url: `${base}/list?path=/` });
    expectEnvelope(noAuth, 401, 'UNAUTHORIZED');
  });
});
