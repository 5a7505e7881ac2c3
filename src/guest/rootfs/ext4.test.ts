import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, linkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findExecutable } from '../../process/index.js';
import { ensureMountPoints, ext4Layout, hasExt4Magic, measureTree, mke2fsArgs, packExt4, ROOTFS_MOUNT_POINTS, uuidFromKey } from './ext4.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tfc-ext4-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('mke2fs argv and sizing', () => {
  it('packs the directory as journal-less ext4 with a fixed UUID, hash seed, label and root owner', () => {
    const uuid = uuidFromKey('k'.repeat(64));
    expect(mke2fsArgs({ dir: '/w/root', file: '/w/rootfs.ext4', layout: { sizeBytes: 300 * 1048576, inodes: 9000 }, uuid })).toEqual([
      '-q',
      '-F',
      '-t',
      'ext4',
      '-d',
      '/w/root',
      '-L',
      'tfc-root',
      '-m',
      '0',
      '-b',
      '4096',
      '-N',
      '9000',
      '-I',
      '256',
      '-O',
      '^has_journal,^resize_inode',
      '-E',
      `root_owner=0:0,hash_seed=${uuid},lazy_itable_init=0`,
      '-U',
      uuid,
      '/w/rootfs.ext4',
      '307200k',
    ]);
  });

  it('derives a stable RFC 4122 v4-shaped UUID from the key', () => {
    const a = uuidFromKey('a'.repeat(64));
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(uuidFromKey('a'.repeat(64))).toBe(a);
    expect(uuidFromKey('b'.repeat(64))).not.toBe(a);
  });

  it('sizes the image as content + metadata + extra, in whole MiB, with inodes for every entry', () => {
    const small = ext4Layout({ bytes: 100 * 1048576, entries: 5000 }, 64);
    expect(small.sizeBytes % 1048576).toBe(0);
    expect(small.sizeBytes).toBeGreaterThan((100 + 64) * 1048576);
    expect(small.sizeBytes).toBeLessThan((100 + 64 + 30) * 1048576);
    expect(small.inodes).toBeGreaterThanOrEqual(5000 + 1024);
    // extra_mib is free space on top: 64 more MiB asked, at least 64 MiB more image.
    expect(small.sizeBytes - ext4Layout({ bytes: 100 * 1048576, entries: 5000 }, 0).sizeBytes).toBeGreaterThanOrEqual(64 * 1048576);
  });
});

describe('the tree', () => {
  it('measures data in 4 KiB blocks, counting hard links once and short symlinks as free', () => {
    mkdirSync(join(dir, 'usr/bin'), { recursive: true });
    writeFileSync(join(dir, 'usr/bin/a'), Buffer.alloc(5000));
    linkSync(join(dir, 'usr/bin/a'), join(dir, 'usr/bin/a2'));
    writeFileSync(join(dir, 'empty'), '');
    symlinkSync('a', join(dir, 'usr/bin/short'));
    symlinkSync('x'.repeat(80), join(dir, 'usr/bin/long'));
    // root dir + usr + usr/bin = 3 blocks; a = 2 blocks; long symlink = 1 block.
    expect(measureTree(dir)).toEqual({ bytes: (3 + 2 + 1) * 4096, entries: 7 });
  });

  it('creates the missing mount points with their modes and refuses a file where one must be', () => {
    mkdirSync(join(dir, 'proc'), { mode: 0o700 });
    ensureMountPoints(dir);
    for (const { path, mode } of ROOTFS_MOUNT_POINTS) {
      const st = statSync(join(dir, path));
      expect(st.isDirectory()).toBe(true);
      if (path !== 'proc') expect(st.mode & 0o7777).toBe(mode);
    }
    expect(statSync(join(dir, 'proc')).mode & 0o777).toBe(0o700);
    const other = mkdtempSync(join(dir, 'x-'));
    writeFileSync(join(other, 'tmp'), 'not a dir');
    expect(() => ensureMountPoints(other)).toThrow('/tmp in the root filesystem is not a directory');
  });
});

const tools = ['mke2fs', 'debugfs'].filter((t) => !findExecutable(t));
describe.skipIf(tools.length > 0)('packExt4 (real mke2fs)', () => {
  it('writes an ext4 image holding the files, owned by root, with the UUID asked for', async () => {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    writeFileSync(join(root, 'usr/bin/hello'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    ensureMountPoints(root);
    const file = join(dir, 'rootfs.ext4');
    const uuid = uuidFromKey('test');
    await packExt4({ dir: root, file, layout: ext4Layout(measureTree(root), 1), uuid });
    expect(hasExt4Magic(file)).toBe(true);
    expect(hasExt4Magic(join(root, 'usr/bin/hello'))).toBe(false);
    const stat = execFileSync('debugfs', ['-R', 'stat /usr/bin/hello', file], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    expect(stat).toMatch(/Mode: +0755/);
    expect(stat).toMatch(/Size: 18\b/);
    const ls = execFileSync('debugfs', ['-R', 'ls /', file], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    for (const name of ['proc', 'sys', 'dev', 'tmp', 'run', '.tfc', 'usr']) expect(ls).toContain(name);
    const header = execFileSync('dumpe2fs', ['-h', file], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    expect(header).toContain(`Filesystem UUID:          ${uuid}`);
    expect(header).toMatch(/Filesystem volume name: +tfc-root/);
    expect(header).not.toMatch(/features:.*has_journal/);
  });
});
