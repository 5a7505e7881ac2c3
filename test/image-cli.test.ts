import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasExt4Magic } from '../src/guest/rootfs/ext4.js';
import { findExecutable } from '../src/process/index.js';
import { tarBuffer, writeOciLayout } from '../src/testing/oci-fixtures.js';
import { runTfc, scratchDir, testDataDir, writeConfig } from './helpers.js';

/** `debugfs -R CMD FILE` output: reads the ext4 image without mounting it. */
function debugfs(file: string, cmd: string): string {
  return execFileSync('debugfs', ['-R', cmd, file], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
}

describe('tfc image', () => {
  it('build is a cache hit when nothing changed, and ls lists the image', async () => {
    const build = await runTfc(['image', 'build', '--json']);
    expect(build.code).toBe(0);
    const result = JSON.parse(build.stdout);
    expect(result.cache_hit).toBe(true);
    expect(result.steps.map((s: { name: string }) => s.name)).toEqual(['resolve kernel package', 'check cache']);
    const manifest = JSON.parse(readFileSync(join(result.dir, 'manifest.json'), 'utf8'));
    expect(manifest.kernel.release).toMatch(/-cloud-amd64$/);
    expect(manifest.modules.indexOf('virtio_ring')).toBeLessThan(manifest.modules.indexOf('virtio'));
    expect(manifest.files.initrd.sha256).toMatch(/^[0-9a-f]{64}$/);

    const ls = await runTfc(['image', 'ls', '--json']);
    const images = JSON.parse(ls.stdout);
    expect(images.find((i: { digest: string }) => i.digest === manifest.digest)).toMatchObject({ current: true, name: 'minimal' });
  });

  it('a forced rebuild elsewhere produces byte-identical artifacts (deterministic)', async () => {
    const other = scratchDir();
    try {
      const r = await runTfc(['image', 'build', '--force', '--json'], { dataDir: other.path, timeoutMs: 600_000 });
      expect(r.code).toBe(0);
      const fresh = JSON.parse(r.stdout);
      expect(fresh.cache_hit).toBe(false);
      const original = JSON.parse((await runTfc(['image', 'ls', '--json'])).stdout).find(
        (i: { name: string; current: boolean }) => i.name === 'minimal' && i.current,
      );
      expect(fresh.manifest.files).toEqual(original.files);
      expect(fresh.manifest.digest).toBe(original.digest);
    } finally {
      other.remove();
    }
  });

  it('an unknown kernel package fails with the fix', async () => {
    const dir = scratchDir();
    try {
      const config = writeConfig(dir.path, `data_dir = "${dir.path}"\n[images]\nkernel_package = "linux-image-0.0.0-99-cloud-amd64"\n`);
      const r = await runTfc(['--config', config, 'image', 'build'], { env: { TFC_DATA_DIR: '' } });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/IMAGE_BUILD_FAILED.*linux-image-0\.0\.0-99-cloud-amd64.*apt-get update/s);
    } finally {
      dir.remove();
    }
  });
});

// test/global-setup.ts built python and node once (one mmdebstrap each); here they are cache hits.
// Without mmdebstrap or root, global-setup skipped them, and so do these tests.
const debianImages = findExecutable('mmdebstrap') !== null && process.getuid?.() === 0 && process.env.TFC_TEST_SKIP_ROOTFS_IMAGES !== '1';
if (!debianImages) console.warn('python/node image tests skipped: needs mmdebstrap and root (see test/global-setup.ts)');

describe('tfc image: debian and oci images', () => {
  it.skipIf(!debianImages)('python: a Debian rootfs with python3, listed with its version; a second build is a cache hit', async () => {
    const r = await runTfc(['image', 'build', 'python', '--json'], { timeoutMs: 900_000 });
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.cache_hit).toBe(true);
    expect(result.steps.map((s: { name: string }) => s.name)).toEqual(['resolve kernel package', 'resolve rootfs inputs', 'check cache']);
    const m = result.manifest;
    expect(m).toMatchObject({ schema: 2, name: 'python', kind: 'debian', contents: { kind: 'debian', suite: 'bookworm', variant: 'minbase' } });
    const python3 = m.contents.packages.find((p: { name: string }) => p.name === 'python3');
    expect(python3.version).toMatch(/^3\.\d+/);
    expect(m.contents.packages.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['curl', 'ca-certificates']));
    const rootfs = join(result.dir, 'rootfs.ext4');
    expect(hasExt4Magic(rootfs)).toBe(true);
    expect(m.files.rootfs.sizeBytes).toBe(statSync(rootfs).size);
    expect(debugfs(rootfs, 'stat /usr/bin/python3')).toMatch(/Type: symlink/);
    expect(debugfs(rootfs, 'ls /usr/bin')).toMatch(/python3\.\d+/);
    expect(debugfs(rootfs, 'ls /')).toContain('.tfc');
    // Docs and man pages were left out (dpkg path-excludes), copyright files kept.
    expect(debugfs(rootfs, 'ls /usr/share/man')).not.toMatch(/man1/);
    expect(debugfs(rootfs, 'ls /usr/share/doc/python3')).toContain('copyright');

    const inspect = await runTfc(['image', 'inspect', 'python']);
    expect(inspect.stdout).toMatch(/^ {2}python3 3\.\d+\S* amd64$/m);
  });

  it.skipIf(!debianImages)('node: a Debian rootfs with nodejs', async () => {
    const r = await runTfc(['image', 'ls', '--json']);
    const node = JSON.parse(r.stdout).find((i: { name: string; current: boolean }) => i.name === 'node' && i.current);
    expect(node).toMatchObject({ kind: 'debian', contents: { requested: ['nodejs', 'ca-certificates', 'curl'] } });
    expect(debugfs(join(node.dir, 'rootfs.ext4'), 'stat /usr/bin/node')).toMatch(/Type: regular/);
    const text = await runTfc(['image', 'ls']);
    expect(text.stdout).toMatch(/│ node +│ debian +│/);
    expect(text.stdout).toMatch(/│ minimal +│ minimal +│/);
  });

  it("--from-oci: two layers and a whiteout become the image's files, sharing the kernel and initramfs", async () => {
    const dir = scratchDir();
    try {
      const layout = join(dir.path, 'layout');
      writeOciLayout(layout, [
        {
          refs: ['v1'],
          layers: [
            tarBuffer([
              { path: 'app/', type: 'Directory' },
              { path: 'app/main.sh', data: '#!/bin/sh\necho hello\n', mode: 0o755 },
              { path: 'app/stale.txt', data: 'to be deleted' },
            ]),
            tarBuffer([
              { path: 'app/', type: 'Directory' },
              { path: 'app/.wh.stale.txt', data: '' },
              { path: 'app/data.txt', data: 'layer two' },
            ]),
          ],
        },
      ]);
      const name = `oci-it-${process.pid}`;
      const r = await runTfc(['image', 'build', '--from-oci', layout, '--name', name, '--ref', 'v1', '--json'], { timeoutMs: 600_000 });
      expect(r.code).toBe(0);
      const result = JSON.parse(r.stdout);
      expect(result.manifest).toMatchObject({ kind: 'oci', contents: { ref: 'v1', layers: [expect.anything(), expect.anything()] } });
      const files = debugfs(join(result.dir, 'rootfs.ext4'), 'ls /app');
      expect(files).toContain('main.sh');
      expect(files).toContain('data.txt');
      expect(files).not.toContain('stale.txt');
      const minimal = JSON.parse((await runTfc(['image', 'ls', '--json'])).stdout).find(
        (i: { name: string; current: boolean }) => i.name === 'minimal' && i.current,
      );
      expect(result.manifest.files.vmlinux).toEqual(minimal.files.vmlinux);
      expect(result.manifest.files.initrd).toEqual(minimal.files.initrd);
      // It boots: the image's files are the root (read-only under the
      // overlay); the image has no shell, so the command uses /.tfc's busybox.
      const config = join(dir.path, 'tfc.toml');
      writeFileSync(config, `[profiles.ocitest]\nimage = "${name}"\n`);
      const run = await runTfc(
        [
          '--config',
          config,
          'vm',
          'run',
          '--profile',
          'ocitest',
          '--',
          '/.tfc/busybox',
          'sh',
          '-c',
          'ls /app; cat /app/data.txt; echo; /.tfc/busybox sh /app/main.sh',
        ],
        { timeoutMs: 300_000 },
      );
      expect(run.stderr).toMatch(/exit 0/);
      expect(run.stdout).toBe('data.txt\nmain.sh\nlayer two\nhello\n');
      expect(run.code).toBe(0);
      // Remove this test's image from the shared data dir.
      rmSync(result.dir, { recursive: true, force: true });
      rmSync(join(testDataDir(), 'images', 'refs', name), { force: true });
      rmSync(join(testDataDir(), 'images', '.rootfs', `oci-${result.manifest.rootfs.key.slice(0, 16)}`), { recursive: true, force: true });
      expect(existsSync(result.dir)).toBe(false);
    } finally {
      dir.remove();
    }
  });
});

describe('tfc doctor and config', () => {
  it('doctor --json reports each check with a status and a fix where needed', async () => {
    const r = await runTfc(['doctor', '--json']);
    const report = JSON.parse(r.stdout);
    const byName = Object.fromEntries(report.checks.map((c: { name: string }) => [c.name, c]));
    expect(byName.qemu.status).toBe('ok');
    expect(byName.accelerator.detail).toMatch(/^(tcg|kvm): /);
    expect(byName['image minimal'].status).toBe('ok');
    for (const c of report.checks) if (c.status !== 'ok') expect(c.fix).toBeTruthy();
    expect(r.code).toBe(report.ok ? 0 : 1);
  });

  it('doctor fails (exit 1) when the image is missing, saying how to build it', async () => {
    const empty = scratchDir();
    try {
      const r = await runTfc(['doctor'], { dataDir: empty.path });
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/\[fail\] image minimal +not built \(profile minimal cannot start VMs until it is\)\n +fix: tfc image build minimal/);
    } finally {
      empty.remove();
    }
  });

  it('config validate accepts a good file and rejects a bad one with line numbers', async () => {
    const dir = scratchDir();
    try {
      const good = writeConfig(dir.path, '[profiles.big]\nvcpus = 2\nmemory_mib = 512\n');
      expect((await runTfc(['config', 'validate', good])).code).toBe(0);
      const bad = writeConfig(dir.path, '[vmm.qemu]\nacel = "tcg"\n');
      const r = await runTfc(['config', 'validate', bad]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/line 2.*vmm\.qemu\.acel.*did you mean "accel"/s);
    } finally {
      dir.remove();
    }
  });

  it('config show says where each value came from', async () => {
    const r = await runTfc(['config', 'show', '--json'], { env: { TFC_QEMU_ACCEL: 'tcg' } });
    const shown = JSON.parse(r.stdout);
    expect(shown.sources['vmm.qemu.accel']).toEqual({ kind: 'env', env: 'TFC_QEMU_ACCEL' });
    expect(shown.sources['log_level']).toEqual({ kind: 'default' });
    expect(shown.config.vmm.qemu.accel).toBe('tcg');
  });
});
