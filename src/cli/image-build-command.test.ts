import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { findExecutable } from '../process/index.js';
import { buildFakeKernelDeb, FAKE_KERNEL, writeFakeApt } from '../testing/fake-kernel-package.js';
import { runCli } from '../testing/run-cli.js';
import { createBuildProgress } from './progress.js';

// `tfc image build` through the real entry point, offline (fake kernel
// package and apt stand-ins, real busybox/gcc/lz4/dpkg-deb/cpio).

const missing = ['busybox', 'gcc', 'lz4', 'dpkg-deb', 'cpio'].filter((t) => !findExecutable(t));
if (missing.length) console.warn(`tfc image build tests skipped: ${missing.join(', ')} not installed`);

describe.skipIf(missing.length > 0)('tfc image build', () => {
  let dir: string;
  let configPath: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-cli-image-'));
    const deb = await buildFakeKernelDeb(join(dir, 'pkg'));
    writeFakeApt(join(dir, 'bin'), { version: deb.version, sha256: deb.sha256, downloadFrom: deb.debPath });
    configPath = join(dir, 'tfc.toml');
    writeFileSync(configPath, `data_dir = "${join(dir, 'data')}"\n`);
    vi.stubEnv('PATH', `${join(dir, 'bin')}:${process.env.PATH}`);
    vi.stubEnv('TFC_DATA_DIR', '');
  });

  afterAll(() => {
    vi.unstubAllEnvs();
    rmSync(dir, { recursive: true, force: true });
  });

  it('builds, printing each step on stderr (not a terminal) and the result on stdout; then a cache hit as JSON', async () => {
    const r = await runCli(['--config', configPath, 'image', 'build']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`building image "minimal" (minimal) for profile "minimal" in ${join(dir, 'data', 'images')}`);
    expect(r.stderr).toMatch(/ {2}resolve kernel package: linux-image-6\.1\.0-99-cloud-amd64 6\.1\.99-1 \(\d+ ms\)/);
    expect(r.stderr).toMatch(/ {2}write manifest: [0-9a-f]{16} \(\d+ ms\)/);
    expect(r.stdout).toMatch(
      new RegExp(`^built: minimal [0-9a-f]{16} kernel ${FAKE_KERNEL.release} \\(${FAKE_KERNEL.name} 6\\.1\\.99-1\\)\\n {2}.*minimal-[0-9a-f]{16}\\n$`),
    );

    const hit = await runCli(['--config', configPath, 'image', 'build', '--json']);
    expect(hit.code).toBe(0);
    expect(hit.stderr).toBe('');
    const json = JSON.parse(hit.stdout) as { cache_hit: boolean; steps: Array<{ name: string }>; manifest: { name: string } };
    expect(json.cache_hit).toBe(true);
    expect(json.manifest.name).toBe('minimal');
    expect(json.steps.map((s) => s.name)).toEqual(['resolve kernel package', 'check cache']);

    const ls = await runCli(['--config', configPath, 'image', 'ls']);
    expect(ls.stdout).toMatch(/minimal.*6\.1\.0-99-cloud-amd64.*yes/);
  }, 240_000);

  it('an unknown profile is refused with the known ones', async () => {
    const r = await runCli(['--config', configPath, 'image', 'build', '--profile', 'nope']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('tfc: error PROFILE_NOT_FOUND: profile "nope" not found; available: minimal, python, node (or define [profiles.nope] in tfc.toml)\n');
  });
});

describe('build progress on a terminal', () => {
  it('draws a bar that advances per step and ends with the last step note', () => {
    const stream = Object.assign(new PassThrough(), {
      isTTY: true,
      columns: 100,
      cursorTo: () => true,
      clearLine: () => true,
      moveCursor: () => true,
    }) as unknown as NodeJS.WriteStream;
    let text = '';
    (stream as unknown as PassThrough).on('data', (c: Buffer) => (text += c.toString()));
    const progress = createBuildProgress(stream);
    progress.step(1, 2, 'resolve kernel package');
    progress.stepDone('resolve kernel package', 12, 'linux-image-x');
    progress.step(2, 2, 'check cache');
    progress.stepDone('check cache', 3);
    progress.stop();
    expect(text).toContain('2/2 check cache: done (3 ms)');
  });

  it('stop before any step prints nothing', () => {
    const stream = Object.assign(new PassThrough(), { isTTY: true }) as unknown as NodeJS.WriteStream;
    let text = '';
    (stream as unknown as PassThrough).on('data', (c: Buffer) => (text += c.toString()));
    createBuildProgress(stream).stop();
    expect(text).toBe('');
  });
});
