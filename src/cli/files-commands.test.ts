import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../api/app.js';
import { FAKE_TOKEN, FAKE_VM_ID, fakeDeps, fakeVm, type FakeVm } from '../testing/fake-api-deps.js';
import { runCli } from '../testing/run-cli.js';

// `tfc vm files ls|stat|mkdir|rm` against the real HTTP layer serving an
// in-memory VM: what the user sees for the daemon's real answers.

let vm: FakeVm;
let app: FastifyInstance;
let dir: string;
let configPath: string;

beforeAll(async () => {
  vm = fakeVm();
  app = await buildApp(fakeDeps(vm));
  await app.listen({ host: '127.0.0.1', port: 0 });
  dir = mkdtempSync(join(tmpdir(), 'tfc-cli-files-'));
  configPath = join(dir, 'tfc.toml');
  writeFileSync(configPath, `data_dir = "${join(dir, 'data')}"\n`);
});

afterAll(async () => {
  await app?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  vm.files.clear();
  vm.dirs.clear();
  vi.stubEnv('TFC_URL', `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
  vi.stubEnv('TFC_TOKEN', FAKE_TOKEN);
  vi.stubEnv('TFC_DATA_DIR', '');
});

afterEach(() => {
  vi.unstubAllEnvs();
});

const tfc = (...args: string[]) => runCli(['--config', configPath, 'vm', 'files', ...args]);

describe('tfc vm files', () => {
  it('mkdir -p, ls, stat and rm -r a directory tree', async () => {
    const made = await tfc('mkdir', FAKE_VM_ID, '/work/src', '-p', '--mode', '700');
    expect(made.code, made.stderr).toBe(0);
    expect(made.stderr).toBe('created /work/src\n');
    expect((await tfc('mkdir', FAKE_VM_ID, '/work/src', '-p')).stderr).toBe('/work/src already exists\n');
    vm.files.set('/work/a b.txt', Buffer.from('hello'));

    const ls = await tfc('ls', FAKE_VM_ID, '/work');
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/type.*mode.*size.*modified.*name/);
    expect(ls.stdout).toMatch(/file\s*│?\s*0644\s*│?\s*5\s*│?\s*1970-01-01T00:00:00.000Z\s*│?\s*a b.txt/);
    expect(ls.stdout).toMatch(/dir\s*│?\s*0755.*src\//);
    const json = await tfc('ls', FAKE_VM_ID, '/work', '--json', '--max-entries', '1');
    expect(JSON.parse(json.stdout)).toMatchObject({ path: '/work', entries: [{ name: 'a b.txt', type: 'file', size: 5 }], truncated: true });
    const capped = await tfc('ls', FAKE_VM_ID, '/work', '--max-entries', '1');
    expect(capped.stderr).toMatch(/only the first 1 entries are shown; raise --max-entries/);

    const stat = await tfc('stat', FAKE_VM_ID, '/work/a b.txt');
    expect(stat.stdout).toBe('/work/a b.txt  file  size 5  mode 0644  uid 0  gid 0  modified 1970-01-01T00:00:00.000Z\n');
    expect(JSON.parse((await tfc('stat', FAKE_VM_ID, '/work', '--json')).stdout)).toMatchObject({ type: 'dir', symlink_target: null });

    const refused = await tfc('rm', FAKE_VM_ID, '/work');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/AGENT_ERROR.*directory not empty; pass recursive/);
    const rm = await tfc('rm', FAKE_VM_ID, '/work', '-r', '--json');
    expect(rm.code, rm.stderr).toBe(0);
    expect(JSON.parse(rm.stdout)).toEqual({ path: '/work', removed: 3 });
    expect(vm.files.size).toBe(0);
  });

  it('reports a missing path and bad options with the error code', async () => {
    const missing = await tfc('stat', FAKE_VM_ID, '/nope');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/tfc: error AGENT_ERROR: .*FILE_NOT_FOUND.*\/nope/);
    const badMode = await tfc('mkdir', FAKE_VM_ID, '/x', '--mode', 'rwx');
    expect(badMode.code).not.toBe(0);
    expect(badMode.stderr).toMatch(/INVALID_ARGUMENT: --mode must be 3 or 4 octal digits/);
    const rel = await tfc('ls', FAKE_VM_ID, 'relative');
    expect(rel.stderr).toMatch(/INVALID_ARGUMENT/);
  });
});
