import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../api/app.js';
import { findExecutable, runCommand } from '../process/index.js';
import { FAKE_TOKEN, FAKE_VM_ID, fakeDeps, fakeVm } from '../testing/fake-api-deps.js';

// The client as a user gets it: the package's own package.json (exports,
// files) over a build of the client only (fast: a few files), packed with
// `npm pack --dry-run`, and a TypeScript program that imports
// 'terraphim-firecracker/client' (self-reference through `exports`),
// type-checked against the emitted .d.ts and run with plain Node.
const ROOT = resolve(import.meta.dirname, '../..');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const npm = findExecutable('npm');
const TS_OPTIONS = ['--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--strict', '--esModuleInterop', '--resolveJsonModule'];

if (!npm) console.warn('client package test skipped: npm is not installed');

const CONSUMER = `
import { TfcClient, VmNotFoundError, type Vm } from 'terraphim-firecracker/client';

const client = new TfcClient({ url: process.env.TFC_URL!, token: process.env.TFC_TOKEN! });
const vm: Vm = await client.getVm(process.env.VM_ID!);
const health = await client.health();
let notFound = '';
try {
  await client.getVm('vm-000000000000');
} catch (err) {
  if (err instanceof VmNotFoundError) notFound = err.code + ' ' + err.status;
}
console.log(JSON.stringify({ id: vm.id, state: vm.state, health: health.status, notFound }));
`;

describe.skipIf(!npm)('the published client (terraphim-firecracker/client)', () => {
  let dir = '';
  let app: FastifyInstance;
  let base = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-client-package-'));
    await runCommand(
      process.execPath,
      [TSC, join(ROOT, 'src/client/index.ts'), ...TS_OPTIONS, '--declaration', '--skipLibCheck', '--rootDir', join(ROOT, 'src'), '--outDir', join(dir, 'dist')],
      {
        cwd: ROOT,
        timeoutMs: 120_000,
      },
    );
    copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    app = await buildApp(fakeDeps(fakeVm()));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('npm pack contains the built client and its type declarations', async () => {
    const r = await runCommand(npm!, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, timeoutMs: 60_000 });
    const [pack] = JSON.parse(r.stdout.toString()) as Array<{ name: string; files: Array<{ path: string }> }>;
    const files = pack.files.map((f) => f.path);
    expect(pack.name).toBe('terraphim-firecracker');
    expect(files).toEqual(
      expect.arrayContaining(['dist/client/index.js', 'dist/client/index.d.ts', 'dist/client/types.d.ts', 'dist/api/schemas.d.ts', 'package.json']),
    );
    expect(files.filter((f) => f.includes('.test.'))).toEqual([]);
    // The client's import graph: schemas, limits and errors only, nothing that runs VMs.
    const compiled = files.filter((f) => f.endsWith('.js')).sort();
    expect(
      compiled.filter(
        (f) => !/^dist\/(client\/|api\/(schemas(-[a-z]+)?|limits)\.js|errors\/|guest\/(agent-protocol|base64)\.js|snapshot\/live\/limits\.js)/.test(f),
      ),
    ).toEqual([]);
    expect(compiled).toEqual(expect.arrayContaining(['dist/api/schemas-snapshots.js', 'dist/snapshot/live/limits.js']));
  }, 60_000);

  it("a user's TypeScript program imports it by package name, type-checks and runs; misuse does not compile", async () => {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { exports: Record<string, { types: string; import: string }> };
    expect(pkg.exports['./client']).toEqual({ types: './dist/client/index.d.ts', import: './dist/client/index.js' });
    writeFileSync(join(dir, 'consumer.mts'), CONSUMER);
    writeFileSync(
      join(dir, 'wrong.mts'),
      `import { TfcClient } from 'terraphim-firecracker/client';\nawait new TfcClient({ url: 'x' }).exec('vm-0', { cmd: 'ls' });\n`,
    );
    // One compiler run for both (it still emits consumer.mjs): the only errors are wrong.mts's.
    const tsc = await runCommand(process.execPath, [TSC, 'consumer.mts', 'wrong.mts', ...TS_OPTIONS, '--skipLibCheck', '--types', 'node'], {
      cwd: dir,
      timeoutMs: 120_000,
      allowFailure: true,
    });
    const errors = tsc.stdout
      .toString()
      .split('\n')
      .filter((l) => l.includes('error TS'));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.filter((l) => !/^wrong\.mts\(2,.*error TS2322/.test(l))).toEqual([]);
    const r = await runCommand(process.execPath, ['consumer.mjs'], {
      cwd: dir,
      env: { ...process.env, TFC_URL: base, TFC_TOKEN: FAKE_TOKEN, VM_ID: FAKE_VM_ID },
      timeoutMs: 30_000,
    });
    expect(JSON.parse(r.stdout.toString())).toEqual({ id: FAKE_VM_ID, state: 'running', health: 'ok', notFound: 'VM_NOT_FOUND 404' });
  }, 120_000);
});
