import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { findExecutable } from '../process/index.js';
import { buildFakeKernelDeb, FAKE_KERNEL, writeFakeApt } from '../testing/fake-kernel-package.js';
import { tarBuffer, writeOciLayout } from '../testing/oci-fixtures.js';
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

  it('--from-oci builds an oci image with layer progress; ls shows its kind, inspect its layers and config; the name rebuilds from the recorded source', async () => {
    const layout = join(dir, 'app-oci');
    writeOciLayout(layout, [
      {
        layers: [
          tarBuffer([
            { path: 'bin/', type: 'Directory' },
            { path: 'bin/app', data: 'app', mode: 0o755 },
          ]),
          tarBuffer([{ path: 'srv/', type: 'Directory' }]),
        ],
      },
    ]);
    const r = await runCli(['--config', configPath, 'image', 'build', '--from-oci', layout, '--name', 'app']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`building image "app" (oci) from ${layout} in`);
    expect(r.stderr).toMatch(/^ {4}layer 1\/2 sha256:[0-9a-f]{12} [0-9.]+ KiB$/m);
    expect(r.stderr).toMatch(/^ {2}pack ext4: \d+ MiB \([0-9.]+ MiB content \+ 64 MiB free; [0-9.]+ MiB on disk\) \(\d+ ms\)$/m);
    expect(r.stdout).toMatch(/^built: app [0-9a-f]{16} kernel .* oci, rootfs [0-9.]+ MiB, 2 layers\n/);

    const ls = await runCli(['--config', configPath, 'image', 'ls']);
    expect(ls.stdout).toMatch(/│ app +│ oci +│/);
    const inspect = await runCli(['--config', configPath, 'image', 'inspect', 'app']);
    expect(inspect.stdout).toContain('kind:     oci');
    expect(inspect.stdout).toMatch(/layers: +2\n {2}1\. sha256:/);
    expect(inspect.stdout).toContain('entrypoint: ["/bin/app"]');
    const json = JSON.parse((await runCli(['--config', configPath, 'image', 'show', 'app', '--json'])).stdout);
    expect(json).toMatchObject({ kind: 'oci', rootfs_path: expect.stringMatching(/rootfs\.ext4$/), contents: { source: layout, format: 'oci-layout' } });

    const again = await runCli(['--config', configPath, 'image', 'build', 'app', '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({ cache_hit: true, manifest: { name: 'app', kind: 'oci' } });
  }, 240_000);

  it('inspect of an image that is not built says how to build it', async () => {
    const r = await runCli(['--config', configPath, 'image', 'inspect', 'python']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/IMAGE_NOT_FOUND: image "python" is not built in .*; run `tfc image build python`/);
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

  it('shows a sub-step (an OCI layer) in place of the running step', () => {
    const stream = Object.assign(new PassThrough(), {
      isTTY: true,
      columns: 120,
      cursorTo: () => true,
      clearLine: () => true,
      moveCursor: () => true,
    }) as unknown as NodeJS.WriteStream;
    let text = '';
    (stream as unknown as PassThrough).on('data', (c: Buffer) => (text += c.toString()));
    const progress = createBuildProgress(stream);
    progress.step(1, 3, 'import oci image');
    progress.detail!('layer 2/3 sha256:0123456789ab 12.0 MiB');
    progress.stop();
    expect(text).toContain('0/3 import oci image: layer 2/3 sha256:0123456789ab 12.0 MiB');
  });

  it('prints sub-steps as indented lines when not on a terminal', () => {
    const stream = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;
    let text = '';
    (stream as unknown as PassThrough).on('data', (c: Buffer) => (text += c.toString()));
    const progress = createBuildProgress(stream);
    progress.detail!('layer 1/1 sha256:0123456789ab 1.0 KiB');
    progress.stepDone('import oci image', 5, '1.0 MiB');
    expect(text).toBe('    layer 1/1 sha256:0123456789ab 1.0 KiB\n  import oci image: 1.0 MiB (5 ms)\n');
  });

  it('stop before any step prints nothing', () => {
    const stream = Object.assign(new PassThrough(), { isTTY: true }) as unknown as NodeJS.WriteStream;
    let text = '';
    (stream as unknown as PassThrough).on('data', (c: Buffer) => (text += c.toString()));
    createBuildProgress(stream).stop();
    expect(text).toBe('');
  });
});
