import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTfc, scratchDir, writeConfig } from './helpers.js';

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
      const original = JSON.parse((await runTfc(['image', 'ls', '--json'])).stdout).find((i: { current: boolean }) => i.current);
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
      expect(r.stdout).toMatch(/\[fail\] image minimal +not built\n +fix: tfc image build/);
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
