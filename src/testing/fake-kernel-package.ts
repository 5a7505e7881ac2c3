/**
 * Test support (not shipped behaviour): a Debian kernel package shaped like
 * linux-image-*-cloud-amd64 (an LZ4 bzImage whose payload is a small ELF,
 * and uncompressed .ko files with .modinfo `depends=`), plus stand-ins for
 * `apt-cache` and `apt-get` that answer about it the way apt does. With
 * them on PATH, the image builder runs end to end in seconds, offline.
 * Must not be imported by product code.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '../process/index.js';

export const FAKE_KERNEL = {
  name: 'linux-image-6.1.0-99-cloud-amd64',
  version: '6.1.99-1',
  release: '6.1.0-99-cloud-amd64',
} as const;

/** The uncompressed kernel the fake bzImage carries (what extract vmlinux must produce). */
export const FAKE_VMLINUX = Buffer.concat([Buffer.from('\x7fELF', 'latin1'), Buffer.alloc(64 * 1024, 0x5a), Buffer.from('fake-kernel')]);

/** bzImage layout per the x86 boot protocol: setup sectors with the header, then the payload. */
function bzImage(payload: Buffer): Buffer {
  const setupSects = 3;
  const setupBytes = (setupSects + 1) * 512;
  const image = Buffer.alloc(setupBytes + payload.length + 64);
  image[0x1f1] = setupSects;
  image.write('HdrS', 0x202, 'latin1');
  image.writeUInt16LE(0x020f, 0x206);
  image.writeUInt32LE(0, 0x248);
  image.writeUInt32LE(payload.length, 0x24c);
  payload.copy(image, setupBytes);
  return image;
}

/** A .ko as far as the builder reads it: a .modinfo `depends=` entry. */
function ko(depends: string[]): Buffer {
  return Buffer.concat([
    Buffer.from('\x7fELF', 'latin1'),
    Buffer.alloc(128),
    Buffer.from(`\0license=GPL\0depends=${depends.join(',')}\0vermagic=6.1\0`, 'latin1'),
  ]);
}

/**
 * Builds the fake package in `work` and returns the .deb path and its
 * SHA256. `virtio` is built in (modules.builtin), as in Debian's kernel;
 * virtio_ring is a real dependency that must be loaded first.
 */
export async function buildFakeKernelDeb(work: string, options: { version?: string } = {}): Promise<{ debPath: string; sha256: string; version: string }> {
  const version = options.version ?? FAKE_KERNEL.version;
  const root = join(work, 'pkg');
  const modules = join(root, 'lib/modules', FAKE_KERNEL.release);
  const kernel = join(modules, 'kernel');
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  mkdirSync(join(root, 'boot'), { recursive: true });
  for (const d of ['drivers/virtio', 'drivers/char', 'drivers/block', 'drivers/net', 'net/vmw_vsock', 'fs/overlayfs'])
    mkdirSync(join(kernel, d), { recursive: true });
  writeFileSync(
    join(root, 'DEBIAN/control'),
    `Package: ${FAKE_KERNEL.name}\nVersion: ${version}\nArchitecture: amd64\nMaintainer: tests <tests@example.invalid>\nDescription: fake kernel for tests\n`,
  );
  writeFileSync(join(work, 'vmlinux.in'), FAKE_VMLINUX);
  await runCommand('lz4', ['-l', '-q', '-f', join(work, 'vmlinux.in'), join(work, 'payload.lz4')]);
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32LE(FAKE_VMLINUX.length);
  writeFileSync(join(root, 'boot', `vmlinuz-${FAKE_KERNEL.release}`), bzImage(Buffer.concat([readFileSync(join(work, 'payload.lz4')), trailer])));
  writeFileSync(join(modules, 'modules.builtin'), 'kernel/drivers/virtio/virtio.ko\n');
  writeFileSync(join(kernel, 'drivers/virtio/virtio_ring.ko'), ko(['virtio']));
  writeFileSync(join(kernel, 'drivers/virtio/virtio_mmio.ko'), ko(['virtio', 'virtio_ring']));
  writeFileSync(join(kernel, 'drivers/char/virtio_console.ko'), ko(['virtio', 'virtio_ring']));
  writeFileSync(join(kernel, 'drivers/block/virtio_blk.ko'), ko(['virtio', 'virtio_ring']));
  writeFileSync(join(kernel, 'fs/overlayfs/overlay.ko'), ko([]));
  writeFileSync(join(kernel, 'drivers/net/net_failover.ko'), ko([]));
  writeFileSync(join(kernel, 'drivers/net/virtio_net.ko'), ko(['virtio', 'virtio_ring', 'net_failover']));
  writeFileSync(join(kernel, 'net/vmw_vsock/vsock.ko'), ko([]));
  writeFileSync(join(kernel, 'net/vmw_vsock/vmw_vsock_virtio_transport_common.ko'), ko(['vsock']));
  writeFileSync(join(kernel, 'net/vmw_vsock/vmw_vsock_virtio_transport.ko'), ko(['vmw_vsock_virtio_transport_common', 'virtio', 'virtio_ring', 'vsock']));
  const debPath = join(work, `${FAKE_KERNEL.name}_${version}_amd64.deb`);
  await runCommand('dpkg-deb', ['--root-owner-group', '-Znone', '--build', root, debPath]);
  return { debPath, sha256: createHash('sha256').update(readFileSync(debPath)).digest('hex'), version };
}

/**
 * Writes `apt-cache` and `apt-get` stand-ins into `binDir` (put it first on
 * PATH). apt-cache knows the meta-package and one kernel package with the
 * given SHA256; `apt-get download` copies `downloadFrom` into the current
 * directory (a mirror serving that file).
 */
export function writeFakeApt(binDir: string, pkg: { version: string; sha256: string; downloadFrom: string }): void {
  mkdirSync(binDir, { recursive: true });
  const common = `#!${process.execPath}\nconst [cmd, ...rest] = process.argv.slice(2);\nconst pkg = ${JSON.stringify({ ...pkg, name: FAKE_KERNEL.name })};\n`;
  writeFileSync(
    join(binDir, 'apt-cache'),
    common +
      `if (cmd === 'depends' && rest[0] === 'linux-image-cloud-amd64') { console.log('linux-image-cloud-amd64\\n  Depends: ' + pkg.name); process.exit(0); }
if (cmd === 'show' && rest.includes(pkg.name)) { console.log('Package: ' + pkg.name + '\\nVersion: ' + pkg.version + '\\nSHA256: ' + pkg.sha256 + '\\n'); process.exit(0); }
console.error('E: No packages found'); process.exit(100);
`,
  );
  writeFileSync(
    join(binDir, 'apt-get'),
    common +
      `const fs = require('node:fs'), path = require('node:path');
if (cmd === 'download' && rest.includes(pkg.name + '=' + pkg.version)) { fs.copyFileSync(pkg.downloadFrom, path.join(process.cwd(), pkg.name + '_' + pkg.version + '_amd64.deb')); process.exit(0); }
console.error('E: Unable to locate package'); process.exit(100);
`,
  );
  chmodSync(join(binDir, 'apt-cache'), 0o755);
  chmodSync(join(binDir, 'apt-get'), 0o755);
}
