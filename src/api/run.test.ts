import type { FastifyInstance } from 'fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig, type Profile } from '../config/index.js';
import { CodeRunner, runtimeVmSource } from '../run/index.js';
import { SnapshotManager } from '../snapshot/index.js';
import { canRunFakeVms, compileFakeGuest, openFakeRuntime, type FakeRuntime } from '../testing/fake-runtime.js';
import type { ApiDeps } from './deps.js';
import { buildApp } from './app.js';

// POST /v1/run on the fake driver: each request clones the golden snapshot
// of the default profile, the real agent (on this host) runs the bash
// program in a scratch work directory, and the clone is destroyed after.
const TOKEN = 'run-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

if (!canRunFakeVms) console.warn('POST /v1/run tests skipped: gcc is not installed');

describe.skipIf(!canRunFakeVms)('POST /v1/run (fake driver, real agent)', () => {
  let guest: Awaited<ReturnType<typeof compileFakeGuest>>;
  let rt: FakeRuntime;
  let app: FastifyInstance;
  let workDir: string;

  beforeAll(async () => {
    guest = await compileFakeGuest();
    rt = openFakeRuntime(guest.agentBinary);
    workDir = mkdtempSync(join(tmpdir(), 'tfc-run-test-'));
    const config = defaultConfig({ env: {} });
    config.profiles[config.defaultProfile] = rt.profile as Profile;
    const runner = new CodeRunner({
      source: runtimeVmSource({ config, snapshots: new SnapshotManager(rt.layout, rt.service), service: rt.service }),
      maxTimeoutMs: 20_000,
      timeoutKey: 'api.max_exec_timeout_ms',
      dir: workDir,
    });
    const deps = {
      token: TOKEN,
      version: '0.0.0-test',
      pools: { list: () => [], poolOf: () => undefined, get: () => undefined },
      service: rt.service,
      repo: rt.repo,
      runner,
    } as unknown as ApiDeps;
    app = await buildApp(deps);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await rt?.close();
    guest?.remove();
    rmSync(workDir, { recursive: true, force: true });
  });

  const run = async (body: unknown) => {
    const res = await app.inject({ method: 'POST', url: '/v1/run', headers: auth, payload: body as object });
    return { status: res.statusCode, json: JSON.parse(res.body) };
  };

  it('runs a bash program with stdin, env and files, and destroys its VM', async () => {
    const r = await run({
      language: 'bash',
      code: 'read name; echo "hi $name from $GREETING"; cat data/in.txt; cat bin.dat | od -An -tx1; echo oops >&2; echo made > out.txt; cat out.txt; exit 4',
      stdin: 'world\n',
      env: { GREETING: 'tfc' },
      files: [
        { path: 'data/in.txt', content: 'file content\n' },
        { path: 'bin.dat', content: Buffer.from([0, 255]).toString('base64'), encoding: 'base64' },
      ],
    });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json).toMatchObject({
      exit_code: 4,
      stdout: 'hi world from tfc\nfile content\n 00 ff\nmade\n',
      stderr: 'oops\n',
      timed_out: false,
      stdout_truncated: false,
      source: 'clone',
      pool: null,
    });
    for (const k of ['allocate_ms', 'write_ms', 'run_ms', 'release_ms', 'total_ms']) expect(r.json.timings[k]).toBeGreaterThanOrEqual(0);
    // Given back: the clone is gone.
    expect(rt.service.get(r.json.vm_id)).toBeUndefined();
  });

  it('kills a program at its timeout', async () => {
    const r = await run({ language: 'bash', code: 'echo started; sleep 10', timeout_ms: 500 });
    expect(r.json).toMatchObject({ timed_out: true, stdout: 'started\n' });
    expect(r.json.duration_ms).toBeLessThan(5000);
  });

  it('refuses bad requests naming the field and the limit, and never leaves a VM behind', async () => {
    const cases: Array<[unknown, number, string, RegExp]> = [
      [{ language: 'cobol', code: 'x' }, 400, 'INVALID_ARGUMENT', /python, node, bash/],
      [{ language: 'bash', code: 'x'.repeat(1024 * 1024 + 1) }, 413, 'PAYLOAD_TOO_LARGE', /code is 1048577 bytes; at most 1048576/],
      [{ language: 'bash', code: 'x', files: [{ path: '../etc/passwd', content: 'x' }] }, 400, 'INVALID_ARGUMENT', /files\[0\]\.path must not contain "\.\."/],
      [
        { language: 'bash', code: 'x', files: Array.from({ length: 101 }, (_, i) => ({ path: `f${i}`, content: '' })) },
        413,
        'PAYLOAD_TOO_LARGE',
        /at most 100 files/,
      ],
      [{ language: 'bash', code: 'x', timeout_ms: 20_001 }, 400, 'INVALID_ARGUMENT', /20000 ms \(api\.max_exec_timeout_ms\)/],
      [{ language: 'bash', code: 'x', pool: 'nope' }, 404, 'POOL_NOT_FOUND', /pool "nope"/],
      [{ language: 'bash' }, 400, 'INVALID_ARGUMENT', /code/],
    ];
    const before = rt.service.list().length;
    for (const [body, status, code, message] of cases) {
      const r = await run(body);
      expect([r.status, r.json.error?.code], JSON.stringify(r.json).slice(0, 300)).toEqual([status, code]);
      expect(r.json.error.message).toMatch(message);
    }
    expect(rt.service.list().length).toBe(before);
  });

  it('can answer before the VM is given back, which still happens', async () => {
    const config = defaultConfig({ env: {} });
    config.profiles[config.defaultProfile] = rt.profile as Profile;
    const errors: unknown[] = [];
    const runner = new CodeRunner({
      source: runtimeVmSource({ config, snapshots: new SnapshotManager(rt.layout, rt.service), service: rt.service }),
      maxTimeoutMs: 20_000,
      dir: workDir,
      giveBackInBackground: true,
      onGiveBackError: (err) => errors.push(err),
    });
    const r = await runner.run({ language: 'bash', code: 'echo bg' });
    expect(r.stdout.toString()).toBe('bg\n');
    expect(r.timings.release_ms).toBeUndefined();
    for (let i = 0; i < 200 && rt.service.get(r.vmId); i++) await new Promise((res) => setTimeout(res, 25));
    expect(rt.service.get(r.vmId)).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it('names the build command when the language image is not built', async () => {
    const r = await run({ language: 'python', code: 'print(1)' });
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe('IMAGE_NOT_FOUND');
    expect(r.json.error.message).toMatch(/profile python, whose image is not built: .*tfc image build/);
  });
});
