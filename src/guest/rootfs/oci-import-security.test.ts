import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tarBuffer, writeDockerArchive, writeOciLayout, type FixtureEntry } from '../../testing/oci-fixtures.js';
import { importOciImage, importOciImageWithLimits } from './oci-import.js';

// Hostile images: nothing may be written, deleted or changed outside destDir.
// The destination sits two levels below `work`, so `../..` from it lands
// next to the sentinel.

let work: string;
let dest: string;
let absName: string;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'tfc-oci-sec-'));
  mkdirSync(join(work, 'a', 'b'), { recursive: true });
  dest = join(work, 'a', 'b', 'root');
  writeFileSync(join(work, 'sentinel.txt'), 'keep');
  mkdirSync(join(work, 'victim'));
  writeFileSync(join(work, 'victim', 'inside.txt'), 'keep too');
  absName = `tfc-abs-${process.pid}-${Date.now()}`;
});
afterEach(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(join(tmpdir(), absName), { force: true });
  rmSync(`/${absName}`, { force: true });
});

/** Every path under `work` outside the destination and the image inputs, with content. */
function outside(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (p === dest || name === 'layout' || name === 'image.tar') continue;
      const st = lstatSync(p);
      const rel = relative(work, p);
      if (st.isDirectory()) {
        out.push(`${rel}/`);
        walk(p);
      } else if (st.isSymbolicLink()) out.push(`${rel} -> ${readlinkSync(p)}`);
      else out.push(`${rel} ${(st.mode & 0o7777).toString(8)} ${readFileSync(p, 'utf8')}`);
    }
  };
  walk(work);
  return out;
}

const LAYER1: () => FixtureEntry[] = () => [
  { path: '../x', data: 'dotdot' },
  { path: 'ok/../../y', data: 'dotdot2' },
  { path: `/${absName}`, data: 'absolute' },
  { path: 'escape', type: 'SymbolicLink', linkpath: '../../..' },
  { path: 'rootlink', type: 'SymbolicLink', linkpath: '/' },
  { path: 'victimlink', type: 'SymbolicLink', linkpath: '../../../victim' },
  { path: 'overwrite', type: 'SymbolicLink', linkpath: '../../../sentinel.txt' },
  // A hardlink to a symlink links the symlink itself (link(2) does not follow on Linux).
  { path: 'hl-sym', type: 'Link', linkpath: 'overwrite' },
  { path: 'hl', type: 'Link', linkpath: '../../../sentinel.txt' },
  { path: 'hl-abs', type: 'Link', linkpath: '/etc/passwd' },
  { path: 'hl-through', type: 'Link', linkpath: 'escape/sentinel.txt' },
];

const LAYER2: FixtureEntry[] = [
  // Whiteouts and an opaque marker under a symlinked directory must not reach its target.
  { path: 'escape/.wh.sentinel.txt' },
  { path: 'victimlink/.wh.inside.txt' },
  { path: 'victimlink/.wh..wh..opq' },
  { path: 'escape/evil', data: 'evil' },
  { path: 'escape/sentinel.txt', data: 'overwritten' },
  { path: 'rootlink/tmp/evil', data: 'evil' },
  { path: 'victimlink/', type: 'Directory', mode: 0o777 },
  { path: 'victimlink/new', data: 'evil' },
  // A regular file replacing a symlink replaces the link, it does not write through it.
  { path: 'overwrite', data: 'replaced in the image', mode: 0o666 },
];

// Whiting out a symlink removes the link, not what it points to.
const LAYER3: FixtureEntry[] = [{ path: '.wh.victimlink' }, { path: '.wh.rootlink' }];

describe('importOciImage against hostile layers', () => {
  for (const format of ['oci', 'docker'] as const) {
    it(`writes nothing outside destDir (${format})`, async () => {
      const before = outside();
      const images = [{ layers: [tarBuffer(LAYER1()), tarBuffer(LAYER2), tarBuffer(LAYER3)] }];
      const src = format === 'oci' ? join(work, 'layout') : join(work, 'image.tar');
      if (format === 'oci') writeOciLayout(src, images);
      else writeDockerArchive(src, images);
      const res = await importOciImage(src, dest);

      expect(outside()).toEqual(before);
      expect(readFileSync(join(work, 'sentinel.txt'), 'utf8')).toBe('keep');
      expect(lstatSync(join(work, 'sentinel.txt')).nlink).toBe(1);
      expect(existsSync(`/${absName}`)).toBe(false);
      expect(existsSync(join(tmpdir(), absName))).toBe(false);

      expect(readdirSync(dest).sort()).toEqual(['escape', 'hl-sym', 'overwrite']);
      expect(readlinkSync(join(dest, 'hl-sym'))).toBe('../../../sentinel.txt');
      expect(readlinkSync(join(dest, 'escape'))).toBe('../../..');
      expect(lstatSync(join(dest, 'overwrite')).isFile()).toBe(true);
      expect(readFileSync(join(dest, 'overwrite'), 'utf8')).toBe('replaced in the image');

      const reasons = Object.fromEntries(res.stats.skipped.map((s) => [s.path, s.reason]));
      expect(reasons).toMatchObject({
        '../x': 'path contains ..',
        'ok/../../y': 'path contains ..',
        [`/${absName}`]: 'absolute path',
        hl: 'hardlink target ../../../sentinel.txt: path contains ..',
        'hl-abs': 'hardlink target /etc/passwd: absolute path',
        'hl-through': 'hardlink target escape/sentinel.txt: parent escape is a symlink (not followed)',
        'escape/evil': 'parent escape is a symlink (not followed)',
        'escape/sentinel.txt': 'parent escape is a symlink (not followed)',
        'rootlink/tmp/evil': 'parent rootlink is a symlink (not followed)',
        'escape/.wh.sentinel.txt': 'whiteout not applied: parent escape is a symlink (not followed)',
        'victimlink/.wh.inside.txt': 'whiteout not applied: parent victimlink is a symlink (not followed)',
        'victimlink/.wh..wh..opq': 'whiteout not applied: victimlink is a symlink (not followed)',
      });
      // victimlink/ as a directory entry replaces the symlink inside the root (so victimlink/new
      // lands in that new directory), then layer 3 removes it.
      expect(res.stats.skipped.some((s) => s.path === 'victimlink/new')).toBe(false);
      expect(res.stats.whiteouts).toBe(2);
    });
  }

  it('lists skipped entries with reasons, at most 1000 then a summary', async () => {
    const fifos: FixtureEntry[] = Array.from({ length: 1100 }, (_, i) => ({ path: `p${i}`, type: 'FIFO' }));
    const layer: FixtureEntry[] = [
      { path: 'dir/', type: 'Directory' },
      { path: 'to-missing', type: 'Link', linkpath: 'nothing' },
      { path: 'to-dir', type: 'Link', linkpath: 'dir' },
      ...fifos,
    ];
    writeOciLayout(join(work, 'layout'), [{ layers: [tarBuffer(layer)] }]);
    const { stats } = await importOciImage(join(work, 'layout'), dest);
    expect(stats.skipped.slice(0, 3)).toEqual([
      { path: 'to-missing', reason: 'hardlink target nothing does not exist' },
      { path: 'to-dir', reason: 'hardlink target dir is a directory' },
      { path: 'p0', reason: 'fifo' },
    ]);
    expect(stats.skipped).toHaveLength(1001);
    expect(stats.skipped[1000]).toEqual({ path: '...', reason: '102 more entries skipped, not listed' });
    expect(readdirSync(dest)).toEqual(['dir']);
  });

  it('bounds the number of entries', async () => {
    writeOciLayout(join(work, 'layout'), [{ layers: [tarBuffer(Array.from({ length: 20 }, (_, i) => ({ path: `f${i}` })))] }]);
    await expect(importOciImageWithLimits(join(work, 'layout'), dest, {}, { maxUnpackedBytes: 1e9, maxEntries: 10 })).rejects.toThrow(/more than 10 entries/);
    expect(existsSync(dest)).toBe(false);
  });

  it('bounds a decompression bomb of padding with no files', async () => {
    // A tar stream padded with a megabyte of zero blocks after its end: no file bytes, but work to do.
    const bomb = Buffer.concat([tarBuffer([{ path: 'f', data: 'x' }]), Buffer.alloc(1024 * 1024)]);
    writeOciLayout(join(work, 'layout'), [{ layers: [bomb] }]);
    await expect(importOciImageWithLimits(join(work, 'layout'), dest, {}, { maxUnpackedBytes: 1000, maxEntries: 10 })).rejects.toThrow(
      /decompresses to more than/,
    );
  });

  it('refuses a malformed tar layer', async () => {
    const broken = tarBuffer([{ path: 'f', data: 'x' }]);
    broken[148] ^= 0xff; // checksum field
    writeOciLayout(join(work, 'layout'), [{ layers: [broken] }]);
    await expect(importOciImage(join(work, 'layout'), dest)).rejects.toThrow(/is not a valid tar/);
  });

  it('accepts an empty layer', async () => {
    writeOciLayout(join(work, 'layout'), [{ layers: [Buffer.alloc(1024), tarBuffer([{ path: 'f', data: 'x' }])] }]);
    const res = await importOciImage(join(work, 'layout'), dest);
    expect(res.stats.files).toBe(1);
  });
});
