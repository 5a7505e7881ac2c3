/**
 * Test support (not shipped behaviour): lays out what `tfc image build` and
 * `tfc snapshot create` leave in a data dir (manifests and files of the
 * right sizes), so listing, resolving and removing can be tested without
 * building a kernel or booting a VM. Must not be imported by product code.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageDirName, writeImageRef, type ImageManifest } from '../guest/image-store.js';
import type { SnapshotManifest } from '../snapshot/snapshot-manager.js';
import type { DataLayout } from '../store/layout.js';

/** Writes a complete image directory (vmlinux, initrd.cpio, manifest.json); `current` also points the name at it. */
export function writeFakeImage(layout: DataLayout, options: { name?: string; key?: string; createdAt?: string; current?: boolean } = {}): ImageManifest {
  // 'minimal' is the image of the built-in default profile.
  const name = options.name ?? 'minimal';
  const key = options.key ?? 'a'.repeat(64);
  const dir = join(layout.images, imageDirName(name, key));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vmlinux'), Buffer.alloc(2 * 1048576));
  writeFileSync(join(dir, 'initrd.cpio'), Buffer.alloc(1048576 / 2));
  const manifest: ImageManifest = {
    schema: 1,
    name,
    key,
    digest: `d${key.slice(1)}`,
    created_at: options.createdAt ?? '2026-11-30T10:00:00.000Z',
    builder_version: 'test',
    kernel: { package: 'linux-image-cloud-amd64', version: '6.1.0-1', release: '6.1.0-28-cloud-amd64', deb_sha256: 'e'.repeat(64) },
    busybox_sha256: 'b'.repeat(64),
    agent_source_sha256: 'c'.repeat(64),
    modules: ['virtio_net'],
    files: { vmlinux: { sha256: '1'.repeat(64), sizeBytes: 2 * 1048576 }, initrd: { sha256: '2'.repeat(64), sizeBytes: 1048576 / 2 } },
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  if (options.current !== false) writeImageRef(layout, name, imageDirName(name, key));
  return manifest;
}

/** Writes a golden snapshot directory (memory, state, manifest.json) made from `imageDigest`. */
export function writeFakeSnapshot(layout: DataLayout, options: { profile?: string; key: string; imageDigest: string; createdAt?: string }): SnapshotManifest {
  const profile = options.profile ?? 'default';
  const dir = join(layout.root, 'snapshots', `${profile}-${options.key.slice(0, 16)}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'memory'), Buffer.alloc(1048576));
  writeFileSync(join(dir, 'state'), Buffer.alloc(4096));
  const manifest: SnapshotManifest = {
    format: 1,
    key: options.key,
    profile,
    driver: 'qemu',
    driver_version: '7.2.0',
    accel: 'tcg',
    image: 'minimal',
    image_digest: options.imageDigest,
    vcpus: 1,
    memory_mib: 128,
    kernel_args: 'console=ttyS0',
    created_at: options.createdAt ?? '2026-11-30T11:00:00.000Z',
    create_phases: [
      { name: 'boot', ms: 900 },
      { name: 'snapshot', ms: 40 },
    ],
    files: { memory: { size_bytes: 1048576 }, state: { size_bytes: 4096 } },
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return manifest;
}
