import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it, vi } from 'vitest';
import { findExecutable } from '../process/index.js';
import { dataLayout, type DataLayout } from '../store/layout.js';
import { buildFakeKernelDeb, FAKE_KERNEL, FAKE_VMLINUX, writeFakeApt } from '../testing/fake-kernel-package.js';
import { buildImage, type BuildProgress } from './image-builder.js';
import { listImages, resolveImage } from './image-store.js';

// The whole image build, offline: a fake Debian kernel package (LZ4
// bzImage + modules) served by stand-ins for apt-cache/apt-get, with the
// real busybox, gcc (the agent), lz4, dpkg-deb and cpio.

const TOOLS = ['busybox', 'gcc', 'lz4', 'dpkg-deb', 'cpio'];
const missing = TOOLS.filter((t) => !findExecutable(t));
if (missing.length)
  console.warn(`image-builder tests skipped: ${missing.join(', ')} not installed (apt-get install busybox-static gcc libc6-dev lz4 dpkg cpio)`);

const BUSYBOX = findExecutable('busybox') ?? '/bin/busybox';
const BUILD_TIMEOUT_MS = 240_000;

describe.skipIf(missing.length > 0)('buildImage', () => {
  let dir: string;
  let deb: { debPath: string; sha256: string; version: string };
  let layout: DataLayout;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-image-build-'));
    deb = await buildFakeKernelDeb(join(dir, 'pkg-work'));
    writeFakeApt(join(dir, 'bin'), { version: deb.version, sha256: deb.sha256, downloadFrom: deb.debPath });
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    vi.stubEnv('PATH', `${join(dir, 'bin')}:${process.env.PATH}`);
    layout = dataLayout(mkdtempSync(join(dir, 'data-')));
  });

  afterEach(() => {
    vi.unstubAllEnvs();
  });

  const options = (extra: { force?: boolean; kernelPackage?: string; busyboxPath?: string } = {}) => ({
    name: 'minimal',
    kernelPackage: 'auto',
    busyboxPath: BUSYBOX,
    ...extra,
  });

  it(
    'builds kernel + initramfs with agent, init and modules in load order; a rebuild is a cache hit with the same image',
    async () => {
      const events: string[] = [];
      const progress: BuildProgress = {
        step: (i, total, name) => events.push(`${i}/${total} ${name}`),
        stepDone: (name) => events.push(`done ${name}`),
      };
      const first = await buildImage(layout, options(), progress);
      expect(first.cacheHit).toBe(false);
      const m = first.image.manifest;
      expect(m).toMatchObject({
        name: 'minimal',
        kernel: { package: FAKE_KERNEL.name, version: deb.version, release: FAKE_KERNEL.release, deb_sha256: deb.sha256 },
      });
      // Dependencies first, the built-in `virtio` skipped, nothing twice.
      expect(m.modules).toEqual([
        'virtio_ring',
        'virtio_mmio',
        'virtio_console',
        'virtio_blk',
        'overlay',
        'net_failover',
        'virtio_net',
        'vsock',
        'vmw_vsock_virtio_transport_common',
        'vmw_vsock_virtio_transport',
      ]);
      // The kernel is the ELF inside the bzImage, byte for byte.
      expect(Buffer.compare(readFileSync(first.image.kernelPath), FAKE_VMLINUX)).toBe(0);
      // The initramfs holds what the guest needs to boot to its agent.
      const listing = execFileSync('cpio', ['-t', '--quiet'], { input: readFileSync(first.image.initrdPath) })
        .toString()
        .split('\n');
      for (const path of ['init', 'bin/busybox', 'bin/sh', 'sbin/tfc-agent', 'lib/modules/virtio_net.ko', 'lib/modules/virtio_ring.ko', 'etc/passwd'])
        expect(listing).toContain(path);
      expect(listing).not.toContain('lib/modules/virtio.ko');
      // Each of the 9 steps reported, in order.
      expect(first.steps.map((s) => s.name)).toEqual([
        'resolve kernel package',
        'check cache',
        'download kernel package',
        'extract kernel package',
        'extract vmlinux',
        'resolve kernel modules',
        'build guest agent',
        'assemble initramfs',
        'write manifest',
      ]);
      expect(events[0]).toBe('1/9 resolve kernel package');
      expect(events.at(-1)).toBe('done write manifest');
      // The name now points at the build; the scratch dir is gone.
      expect(resolveImage(layout, 'minimal').dir).toBe(first.image.dir);
      expect(readdirSync(layout.tmp)).toEqual([]);

      const again = await buildImage(layout, options());
      expect(again.cacheHit).toBe(true);
      expect(again.steps.map((s) => s.name)).toEqual(['resolve kernel package', 'check cache']);
      expect(again.image.manifest.digest).toBe(m.digest);

      // Forced: built again from the same inputs gives the same bytes (deterministic initramfs).
      const forced = await buildImage(layout, options({ force: true }));
      expect(forced.cacheHit).toBe(false);
      expect(forced.image.manifest.digest).toBe(m.digest);
      expect(listImages(layout)).toHaveLength(1);
    },
    BUILD_TIMEOUT_MS,
  );

  it('downloads the package once and keeps it in the cache', async () => {
    // A stale file with another SHA256 is replaced by a fresh download.
    mkdirSync(layout.debCache, { recursive: true });
    const cached = join(layout.debCache, `${FAKE_KERNEL.name}_${deb.version}_amd64.deb`);
    writeFileSync(cached, 'truncated download');
    const { downloadKernelPackage } = await import('./kernel-package.js');
    const path = await downloadKernelPackage({ name: FAKE_KERNEL.name, version: deb.version, sha256: deb.sha256 }, layout.debCache);
    expect(path).toBe(cached);
    expect(Buffer.compare(readFileSync(path), readFileSync(deb.debPath))).toBe(0);
  });

  it('refuses a download whose SHA256 differs from the apt index, saying what to do', async () => {
    const { downloadKernelPackage } = await import('./kernel-package.js');
    await expect(downloadKernelPackage({ name: FAKE_KERNEL.name, version: deb.version, sha256: '0'.repeat(64) }, layout.debCache)).rejects.toThrow(
      new RegExp(`has SHA256 ${deb.sha256}, expected 0{64} from the apt index; the download was discarded`),
    );
  });

  it('a kernel package apt does not know fails with the apt fix', async () => {
    await expect(buildImage(layout, options({ kernelPackage: 'linux-image-6.1.0-1-cloud-amd64' }))).rejects.toThrow(
      /kernel package linux-image-6\.1\.0-1-cloud-amd64 is not in the apt package lists; run `apt-get update`/,
    );
    expect(existsSync(layout.images)).toBe(false);
  });

  it('a kernel_package that is not a cloud kernel name is refused before asking apt', async () => {
    await expect(buildImage(layout, options({ kernelPackage: 'linux-image-amd64' }))).rejects.toThrow(/is not a Debian cloud kernel package name/);
  });

  it('an image without a definition or with a bad name is refused, saying how to define it', async () => {
    await expect(buildImage(layout, { ...options(), name: 'huge' })).rejects.toThrow(
      'unknown image "huge": define [images.huge] in tfc.toml (kind = "debian" or "oci"), or build it with `tfc image build --from-oci PATH --name huge`',
    );
    await expect(buildImage(layout, { ...options(), name: '../x' })).rejects.toThrow('invalid image name "../x"');
    await expect(buildImage(layout, { ...options(), name: 'other', definition: { name: 'other', kind: 'minimal' } })).rejects.toThrow(
      'cannot have kind "minimal"',
    );
  });

  it('a missing busybox fails with the install command', async () => {
    await expect(buildImage(layout, options({ busyboxPath: join(dir, 'no-busybox') }))).rejects.toThrow(
      /no-busybox not found; install it with `apt-get install busybox-static`/,
    );
  });

  it(
    'a dynamically linked busybox is refused (the guest has no shared libraries)',
    async () => {
      const dynamic = join(dir, 'dynamic-busybox');
      copyFileSync('/bin/true', dynamic);
      await expect(buildImage(layout, options({ busyboxPath: dynamic }))).rejects.toThrow(
        /is not a static binary; install it with `apt-get install busybox-static`/,
      );
      // The failed build leaves no scratch directory behind.
      expect(readdirSync(layout.tmp)).toEqual([]);
    },
    BUILD_TIMEOUT_MS,
  );
});
