/**
 * Packs a root filesystem directory into an ext4 image file with `mke2fs -d`
 * (no loop mount, no root needed for the packing itself). The image is
 * attached read-only: the guest puts an overlay over it, so it needs no
 * journal and only the free space the config asks for. Deterministic where
 * cheap: the UUID and directory hash seed come from the cache key, the
 * timestamps from a fixed E2FSPROGS_FAKE_TIME.
 */
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, closeSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { ImageBuildFailedError } from '../../errors/index.js';
import { runCommand } from '../../process/index.js';

/** Directories the stage-1 init mounts over or writes to; created (empty) in every rootfs. */
export const ROOTFS_MOUNT_POINTS: ReadonlyArray<{ path: string; mode: number }> = [
  { path: 'proc', mode: 0o555 },
  { path: 'sys', mode: 0o555 },
  { path: 'dev', mode: 0o755 },
  { path: 'tmp', mode: 0o1777 },
  { path: 'run', mode: 0o755 },
  { path: '.tfc', mode: 0o755 },
];

export const ROOTFS_LABEL = 'tfc-root';
const BLOCK_BYTES = 4096;
const INODE_BYTES = 256;
/** Most directory entries a rootfs may hold (a bound on the walk). */
export const MAX_ROOTFS_ENTRIES = 2_000_000;
/** Timestamp written into the filesystem's own metadata (2023-11-14). */
export const FAKE_TIME = 1_700_000_000;

/** Creates the mount-point directories that are missing; existing ones keep their mode. */
export function ensureMountPoints(root: string): void {
  for (const { path, mode } of ROOTFS_MOUNT_POINTS) {
    const dir = join(root, path);
    let st: Stats | undefined;
    try {
      st = lstatSync(dir);
    } catch {
      mkdirSync(dir, { mode });
      chmodSync(dir, mode); // mkdir applies the umask
      continue;
    }
    if (!st.isDirectory()) throw new ImageBuildFailedError(`/${path} in the root filesystem is not a directory; the guest mounts a file system there`);
  }
}

export interface TreeSize {
  /** File and directory data rounded up to 4 KiB blocks, as mke2fs allocates it. */
  bytes: number;
  /** Directory entries below the root (each needs an inode). */
  entries: number;
}

/** Walks `root` without following symlinks. Throws ImageBuildFailedError beyond MAX_ROOTFS_ENTRIES entries. */
export function measureTree(root: string): TreeSize {
  const size: TreeSize = { bytes: BLOCK_BYTES, entries: 0 };
  const seen = new Set<string>();
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (++size.entries > MAX_ROOTFS_ENTRIES) {
        throw new ImageBuildFailedError(`the root filesystem has more than ${MAX_ROOTFS_ENTRIES} entries; use a smaller image`);
      }
      const path = join(dir, entry.name);
      const st = lstatSync(path);
      if (st.isDirectory()) {
        size.bytes += BLOCK_BYTES;
        stack.push(path);
      } else if (st.isFile()) {
        // Hard links share their blocks: count each inode once.
        if (st.nlink > 1) {
          const id = `${st.dev}:${st.ino}`;
          if (seen.has(id)) continue;
          seen.add(id);
        }
        size.bytes += Math.ceil(st.size / BLOCK_BYTES) * BLOCK_BYTES;
      } else if (st.isSymbolicLink() && st.size >= 60) {
        size.bytes += BLOCK_BYTES; // shorter targets live in the inode
      }
    }
  }
  return size;
}

export interface Ext4Layout {
  sizeBytes: number;
  inodes: number;
}

/**
 * Size of the image: content, inode tables, about 5% for extent trees,
 * bitmaps and group descriptors, 16 MiB slack, then `extraMib` free;
 * rounded to MiB. Inodes: every entry plus room for files created later.
 */
export function ext4Layout(tree: TreeSize, extraMib: number): Ext4Layout {
  const inodes = Math.ceil((tree.entries + 1024 + extraMib * 16) / 8) * 8;
  const metadata = inodes * INODE_BYTES + Math.ceil(tree.bytes * 0.05) + 16 * 1048576;
  const sizeBytes = Math.ceil((tree.bytes + metadata + extraMib * 1048576) / 1048576) * 1048576;
  return { sizeBytes, inodes };
}

/** A UUID (version 4 layout) derived from the cache key, so the same inputs give the same filesystem UUID. */
export function uuidFromKey(key: string): string {
  const h = createHash('sha256').update(`tfc-rootfs-uuid\0${key}`).digest();
  h[6] = (h[6] & 0x0f) | 0x40;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export interface Mke2fsInput {
  dir: string;
  file: string;
  layout: Ext4Layout;
  uuid: string;
  label?: string;
}

/**
 * The mke2fs argv: ext4 without a journal (the image is read-only), no
 * reserved blocks, 4 KiB blocks, owner 0:0 for the root directory, UUID and
 * directory hash seed fixed, the size in KiB. `-F` because the target is a
 * regular file.
 */
export function mke2fsArgs(input: Mke2fsInput): string[] {
  return [
    '-q',
    '-F',
    '-t',
    'ext4',
    '-d',
    input.dir,
    '-L',
    input.label ?? ROOTFS_LABEL,
    '-m',
    '0',
    '-b',
    String(BLOCK_BYTES),
    '-N',
    String(input.layout.inodes),
    '-I',
    String(INODE_BYTES),
    '-O',
    '^has_journal,^resize_inode',
    '-E',
    `root_owner=0:0,hash_seed=${input.uuid},lazy_itable_init=0`,
    '-U',
    input.uuid,
    input.file,
    `${input.layout.sizeBytes / 1024}k`,
  ];
}

/**
 * Packs `dir` into a new ext4 file at `file` (sparse: only used blocks take
 * disk space). Throws ProcessFailedError naming mke2fs's complaint and the
 * package to install when it is missing.
 */
export async function packExt4(input: Mke2fsInput): Promise<void> {
  await runCommand('mke2fs', mke2fsArgs(input), {
    env: { ...process.env, E2FSPROGS_FAKE_TIME: String(FAKE_TIME), SOURCE_DATE_EPOCH: String(FAKE_TIME) },
    timeoutMs: 1_800_000,
    hint: 'mke2fs comes with e2fsprogs: `apt-get install e2fsprogs`',
  });
}

/** True when `file` holds an ext2/3/4 superblock (magic 0xEF53 at byte 1080). */
export function hasExt4Magic(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(2);
    return readSync(fd, buf, 0, 2, 1024 + 56) === 2 && buf.readUInt16LE(0) === 0xef53;
  } finally {
    closeSync(fd);
  }
}
