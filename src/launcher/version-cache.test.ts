import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { binaryIdentity, clearVersionMemory, VERSION_CACHE_MAX_ENTRIES, VersionCache } from './version-cache.js';

let scratch: string;
let binary: string;
let file: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'tfc-version-cache-'));
  binary = join(scratch, 'vmm');
  file = join(scratch, 'cache', 'versions.json');
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});
beforeEach(() => {
  // Each test starts as a new process would: an empty memory, the same file on disk.
  clearVersionMemory();
  writeFileSync(binary, '#!/bin/sh\necho v1\n');
  rmSync(file, { force: true });
});

/** A probe that counts its runs. */
function counter(output = 'QEMU emulator version 7.2.22') {
  const calls = { n: 0 };
  return { calls, run: async () => (calls.n++, output) };
}

describe('VersionCache', () => {
  it('runs the probe once per binary, then answers from memory and, in a new process, from the file', async () => {
    const probe = counter();
    expect(await new VersionCache(file).output(binary, probe.run)).toBe('QEMU emulator version 7.2.22');
    expect(await new VersionCache(file).output(binary, probe.run)).toBe('QEMU emulator version 7.2.22');
    expect(probe.calls.n).toBe(1);
    clearVersionMemory();
    expect(await new VersionCache(file).output(binary, probe.run)).toBe('QEMU emulator version 7.2.22');
    expect(probe.calls.n).toBe(1);
    // Through a symlink: the same file, the same entry.
    const link = join(scratch, 'vmm-link');
    rmSync(link, { force: true });
    symlinkSync(binary, link);
    expect(await new VersionCache(file).output(link, probe.run)).toBe('QEMU emulator version 7.2.22');
    expect(probe.calls.n).toBe(1);
  });

  it('probes again when the binary is modified (mtime), replaced (inode) or resized', async () => {
    const probe = counter();
    const cache = new VersionCache(file);
    await cache.output(binary, probe.run);
    utimesSync(binary, new Date(), new Date(Date.now() + 5000));
    await cache.output(binary, probe.run);
    expect(probe.calls.n).toBe(2);
    const other = join(scratch, 'vmm-new');
    copyFileSync(binary, other);
    rmSync(binary);
    copyFileSync(other, binary); // same size and contents, new inode
    await cache.output(binary, probe.run);
    expect(probe.calls.n).toBe(3);
    writeFileSync(binary, '#!/bin/sh\necho v2 longer\n');
    await cache.output(binary, probe.run);
    expect(probe.calls.n).toBe(4);
    clearVersionMemory();
    await cache.output(binary, probe.run);
    expect(probe.calls.n).toBe(4); // the newest identity is in the file
  });

  it('ignores a corrupt, foreign or oversized file and rewrites it', async () => {
    for (const bad of [
      '{not json',
      JSON.stringify({ format: 99, entries: {} }),
      JSON.stringify([1, 2]),
      JSON.stringify({ format: 1, entries: null }),
      'x'.repeat(300 * 1024),
    ]) {
      clearVersionMemory();
      rmSync(join(scratch, 'cache'), { recursive: true, force: true });
      const probe = counter();
      const cache = new VersionCache(file);
      await cache.output(binary, probe.run); // creates the dir and file
      writeFileSync(file, bad);
      clearVersionMemory();
      expect(cache.readFile()).toBeNull();
      expect(await cache.output(binary, probe.run)).toBe('QEMU emulator version 7.2.22');
      expect(probe.calls.n).toBe(2);
      expect(cache.readFile()?.entries).toBeDefined();
      expect(Object.keys(cache.readFile()!.entries)).toHaveLength(1);
    }
  });

  it('keeps only entries of the right shape, and at most VERSION_CACHE_MAX_ENTRIES', async () => {
    const key = (i: number) => `/old/${i}|1|1|${i}|1`;
    const entries: Record<string, unknown> = { broken: { output: 3, at: 1 }, alsoBroken: null };
    for (let i = 0; i < VERSION_CACHE_MAX_ENTRIES + 5; i++) entries[key(i)] = { output: `v${i}`, at: i };
    writeFileSync(file, JSON.stringify({ format: 1, entries }));
    const cache = new VersionCache(file);
    expect(Object.keys(cache.readFile()!.entries)).toHaveLength(VERSION_CACHE_MAX_ENTRIES + 5);
    await cache.output(binary, counter().run);
    const kept = cache.readFile()!.entries;
    expect(Object.keys(kept)).toHaveLength(VERSION_CACHE_MAX_ENTRIES);
    expect(Object.values(kept).some((e) => e.output === 'QEMU emulator version 7.2.22')).toBe(true);
    expect(kept[key(0)]).toBeUndefined(); // the oldest written went first
    expect(kept[key(VERSION_CACHE_MAX_ENTRIES + 4)]).toBeDefined();
  });

  it('caches nothing for a failed probe or an unreadable binary, and works without a file', async () => {
    const cache = new VersionCache(file);
    await expect(
      cache.output(binary, async () => {
        throw new Error('exec failed');
      }),
    ).rejects.toThrow('exec failed');
    expect(cache.readFile()).toBeNull();
    const probe = counter();
    await new VersionCache(null).output(join(scratch, 'missing'), probe.run);
    await new VersionCache(null).output(join(scratch, 'missing'), probe.run);
    expect(probe.calls.n).toBe(2);
    expect(binaryIdentity(join(scratch, 'missing'))).toBeNull();
    // Memory only, of that instance: nothing written.
    const memoryOnly = counter();
    const own = new VersionCache(null);
    await own.output(binary, memoryOnly.run);
    await own.output(binary, memoryOnly.run);
    expect(memoryOnly.calls.n).toBe(1);
    await new VersionCache(null).output(binary, memoryOnly.run);
    expect(memoryOnly.calls.n).toBe(2);
    expect(() => readFileSync(file)).toThrow();
  });
});
