import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyScratchDisk, createScratchDisk, diskKernelArgs, launchDrives } from './disks.js';

const hasMke2fs = spawnSync('mke2fs', ['-V']).status === 0;
if (!hasMke2fs) console.warn('skipping the scratch disk file tests: mke2fs is not installed (apt-get install e2fsprogs)');

/** The ext4 superblock magic (0xEF53 at byte 1080). */
function isExt(path: string): boolean {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(2);
  readSync(fd, buf, 0, 2, 1080);
  closeSync(fd);
  return buf.readUInt16LE(0) === 0xef53;
}

describe('disk layout and kernel arguments', () => {
  it('puts the root disk first (vda) and the scratch disk after it', () => {
    expect(launchDrives('/img/rootfs.ext4', '/run/scratch.ext4')).toEqual([
      { id: 'rootfs', path: '/img/rootfs.ext4', readOnly: true },
      { id: 'scratch', path: '/run/scratch.ext4', readOnly: false },
    ]);
    expect(launchDrives(undefined, '/run/scratch.ext4')).toEqual([{ id: 'scratch', path: '/run/scratch.ext4', readOnly: false }]);
    expect(launchDrives(undefined, undefined)).toEqual([]);
    expect(diskKernelArgs({ rootfs: true, scratch: true })).toEqual(['tfc.root=/dev/vda', 'tfc.scratch=/dev/vdb']);
    expect(diskKernelArgs({ rootfs: false, scratch: true })).toEqual(['tfc.scratch=/dev/vda']);
    expect(diskKernelArgs({ rootfs: true, scratch: false })).toEqual(['tfc.root=/dev/vda']);
    expect(diskKernelArgs({ rootfs: false, scratch: false })).toEqual([]);
  });
});

describe.runIf(hasMke2fs)('scratch disk files', () => {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-disks-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('makes a sparse ext4 file of the asked size, and copies it keeping it sparse and private', async () => {
    const disk = join(dir, 'scratch.ext4');
    await createScratchDisk(disk, 256);
    const st = statSync(disk);
    expect(st.size).toBe(256 * 1024 * 1024);
    expect(st.blocks * 512).toBeLessThan(16 * 1024 * 1024);
    expect(st.mode & 0o777).toBe(0o600);
    expect(isExt(disk)).toBe(true);

    const copy = join(dir, 'copy.ext4');
    await copyScratchDisk(disk, copy);
    const cst = statSync(copy);
    expect(cst.size).toBe(st.size);
    expect(cst.blocks).toBeLessThanOrEqual(st.blocks);
    expect(cst.mode & 0o777).toBe(0o600);
    expect(isExt(copy)).toBe(true);
  });

  it('refuses sizes out of range and an existing file', async () => {
    for (const bad of [0, -1, 1.5, 2_000_000]) await expect(createScratchDisk(join(dir, `x${bad}`), bad)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    writeFileSync(join(dir, 'taken'), 'keep');
    await expect(createScratchDisk(join(dir, 'taken'), 8)).rejects.toThrow(/EEXIST/);
  });
});
