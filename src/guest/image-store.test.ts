import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dataLayout, type DataLayout } from '../store/layout.js';
import { writeFakeImage } from '../testing/data-dir-fixtures.js';
import { imageDirName, listImages, readImageDir, resolveImage, ROOTFS_FILE, writeImageRef, type ImageManifest } from './image-store.js';

let layout: DataLayout;
beforeEach(() => {
  layout = dataLayout(mkdtempSync(join(tmpdir(), 'tfc-image-store-')));
});
afterEach(() => {
  rmSync(layout.root, { recursive: true, force: true });
});

function writeRootfsImage(name: string, key: string, rootfsBytes: number, recorded = rootfsBytes): string {
  const dir = join(layout.images, imageDirName(name, key));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vmlinux'), Buffer.alloc(10));
  writeFileSync(join(dir, 'initrd.cpio'), Buffer.alloc(20));
  writeFileSync(join(dir, ROOTFS_FILE), Buffer.alloc(rootfsBytes));
  const manifest: ImageManifest = {
    schema: 2,
    name,
    kind: 'debian',
    key,
    digest: 'f'.repeat(64),
    created_at: '2026-11-30T11:00:00.000Z',
    builder_version: '1',
    kernel: { package: 'linux-image-6.1.0-28-cloud-amd64', version: '6.1.1', release: '6.1.0-28-cloud-amd64', deb_sha256: 'e'.repeat(64) },
    busybox_sha256: 'b'.repeat(64),
    agent_source_sha256: 'c'.repeat(64),
    modules: ['virtio_blk'],
    files: {
      vmlinux: { sha256: '1'.repeat(64), sizeBytes: 10 },
      initrd: { sha256: '2'.repeat(64), sizeBytes: 20 },
      rootfs: { sha256: '3'.repeat(64), sizeBytes: recorded },
    },
    rootfs: { key: 'r'.repeat(64), uuid: 'u', label: 'tfc-root', content_bytes: 4096, extra_mib: 64, inodes: 2048 },
    contents: { kind: 'debian', suite: 'bookworm', variant: 'minbase', mirror: 'm', requested: ['python3'], mmdebstrap_version: '1.3.5', packages: [] },
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  writeImageRef(layout, name, imageDirName(name, key));
  return dir;
}

describe('reading image manifests', () => {
  it('reads a schema 1 manifest (minimal, before kinds) as kind "minimal" without a rootfs', () => {
    const written = writeFakeImage(layout);
    expect(written.schema).toBe(1);
    expect(written).not.toHaveProperty('kind');
    const image = resolveImage(layout, 'minimal');
    expect(image.manifest.kind).toBe('minimal');
    expect(image.rootfsPath).toBeUndefined();
    expect(image.kernelPath).toBe(join(image.dir, 'vmlinux'));
  });

  it('reads a schema 2 image with a root filesystem and gives its path', () => {
    const dir = writeRootfsImage('python', 'a'.repeat(64), 4096);
    const image = resolveImage(layout, 'python');
    expect(image.rootfsPath).toBe(join(dir, ROOTFS_FILE));
    expect(image.manifest).toMatchObject({ schema: 2, kind: 'debian', contents: { kind: 'debian', requested: ['python3'] } });
    expect(listImages(layout).map((i) => [i.manifest.name, i.current])).toEqual([['python', true]]);
  });

  it('treats an image whose rootfs is missing or truncated, or whose manifest is not one, as not built', () => {
    const truncated = writeRootfsImage('node', 'b'.repeat(64), 100, 4096);
    expect(readImageDir(truncated)).toBeNull();
    expect(() => resolveImage(layout, 'node')).toThrow(
      /image "node" is not built in .*; run `tfc image build node` \(an image of the config, e\.g\. minimal, python, node\) or `tfc image build --from-oci PATH --name node`/,
    );
    const odd = join(layout.images, 'odd-0000');
    mkdirSync(odd, { recursive: true });
    writeFileSync(join(odd, 'manifest.json'), '"just a string"');
    expect(readImageDir(odd)).toBeNull();
    writeFileSync(join(odd, 'manifest.json'), JSON.stringify({ schema: 3 }));
    expect(readImageDir(odd)).toBeNull();
  });

  it('hides the rootfs cache directory from listings', () => {
    mkdirSync(join(layout.images, '.rootfs', 'debian-0123'), { recursive: true });
    writeFakeImage(layout);
    expect(listImages(layout).map((i) => i.manifest.name)).toEqual(['minimal']);
  });
});
