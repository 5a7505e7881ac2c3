import { describe, expect, it } from 'vitest';
import { classifyMappings, pageTablesKib, parseSmaps, summarizeSmaps } from './smaps.js';

// Where a VMM's memory goes: mappings of a QEMU 7.2 TCG clone (shortened
// from a real /proc/PID/smaps), sorted into kinds and summed.

function mapping(range: string, perms: string, path: string, f: { rss?: number; pss?: number; dirty?: number; clean?: number } = {}): string {
  const inode = path.startsWith('/') ? '2170889' : '0';
  return [
    `${range} ${perms} 00000000 ${path.startsWith('/') ? 'fe:00' : '00:00'} ${inode}${path ? `                    ${path}` : ''}`,
    `Size:               1 kB`,
    `KernelPageSize:        4 kB`,
    `Rss:                ${f.rss ?? 0} kB`,
    `Pss:                ${f.pss ?? 0} kB`,
    `Shared_Clean:          0 kB`,
    `Private_Clean:      ${f.clean ?? 0} kB`,
    `Private_Dirty:      ${f.dirty ?? 0} kB`,
    `Anonymous:          ${f.dirty ?? 0} kB`,
    `VmFlags: rd wr mr mw me ac sd`,
  ].join('\n');
}

const RAM_FILE = '/var/lib/tfc/snapshots/minimal-abc/memory';
const CLONE = [
  mapping('55bc03999000-55bc03da0000', 'r--p', '/usr/bin/qemu-system-x86_64', { rss: 4000, pss: 90, clean: 10 }),
  mapping('55bc0477d000-55bc04b26000', 'rw-p', '/usr/bin/qemu-system-x86_64', { rss: 300, pss: 300, dirty: 300 }),
  mapping('55bc19803000-55bc1a261000', 'rw-p', '[heap]', { rss: 6000, pss: 6000, dirty: 6000 }),
  mapping('7fcd00021000-7fcd04000000', '---p', ''),
  mapping('7fcd07e00000-7fcd17e00000', 'rw-p', RAM_FILE, { rss: 40000, pss: 9000, dirty: 5000, clean: 100 }),
  mapping('7fcd18000000-7fcd57fff000', 'rwxp', '', { rss: 12000, pss: 12000, dirty: 12000 }),
  mapping('7fcd5f8bb000-7fcd600bb000', 'rw-p', '', { rss: 64, pss: 64, dirty: 64 }),
  mapping('7fcd62a13000-7fcd62a15000', 'r-xp', '[vdso]'),
  mapping('7fcd70000000-7fcd73400000', 'r--p', '/var/lib/tfc/images/minimal-1/vmlinux', { rss: 45000, pss: 45000, clean: 45000 }),
  mapping('7ffd12340000-7ffd12361000', 'rw-p', '[stack]', { rss: 40, pss: 40, dirty: 40 }),
].join('\n');

describe('parseSmaps', () => {
  it('reads every mapping with its range, permissions, path and sizes', () => {
    const maps = parseSmaps(CLONE);
    expect(maps).toHaveLength(10);
    expect(maps[4]).toMatchObject({ perms: 'rw-p', path: RAM_FILE, sizeKib: 262144, rssKib: 40000, pssKib: 9000, privateDirtyKib: 5000, privateCleanKib: 100 });
    expect(maps[5]).toMatchObject({ perms: 'rwxp', path: '', sizeKib: 1048572 });
    expect(maps[3].path).toBe('');
  });

  it('refuses text with fields before any mapping (not smaps)', () => {
    expect(() => parseSmaps('Rss:  4 kB\n')).toThrow('before any mapping header');
  });

  it('keeps paths with spaces and the "(deleted)" suffix', () => {
    const [m] = parseSmaps(mapping('1000-2000', 'rw-s', '/dev/shm/my file (deleted)'));
    expect(m.path).toBe('/dev/shm/my file (deleted)');
  });
});

describe('classifyMappings', () => {
  it('sorts a VMM: memory-backend file as RAM, rwx anonymous as TCG code, the kernel file, [heap], the rest', () => {
    expect(classifyMappings(parseSmaps(CLONE), { ramPath: RAM_FILE, ramMib: 256, imagePaths: ['/var/lib/tfc/images/minimal-1/vmlinux'] })).toEqual([
      'files',
      'files',
      'heap',
      'anon-other',
      'guest-ram',
      'tcg-code',
      'anon-other',
      'files',
      'guest-image',
      'anon-other',
    ]);
  });

  it('a cold VM without memory backend: the anonymous mapping of the RAM size is RAM', () => {
    const text = [mapping('7fcd07e00000-7fcd17e00000', 'rw-p', ''), mapping('7fcd18000000-7fcd57fff000', 'rwxp', '')].join('\n');
    expect(classifyMappings(parseSmaps(text), { ramMib: 256 })).toEqual(['guest-ram', 'tcg-code']);
  });

  it('a RAM file shown as deleted is still RAM', () => {
    expect(classifyMappings(parseSmaps(mapping('1000-2000', 'rw-p', `${RAM_FILE} (deleted)`)), { ramPath: RAM_FILE, ramMib: 256 })).toEqual(['guest-ram']);
  });

  it('without an executable anonymous mapping, the largest remaining anonymous one is the code buffer (split-wx memfd also counts)', () => {
    const plain = [mapping('1000-3000', 'rw-p', ''), mapping('10000-90000', 'rw-p', ''), mapping('a0000-a1000', 'rw-p', '[heap]')].join('\n');
    expect(classifyMappings(parseSmaps(plain), { ramMib: 256 })).toEqual(['anon-other', 'tcg-code', 'heap']);
    const split = [mapping('1000-3000', 'r-xs', '/memfd:tcg-jit (deleted)'), mapping('10000-90000', 'rw-p', '')].join('\n');
    expect(classifyMappings(parseSmaps(split), { ramMib: 256 })).toEqual(['tcg-code', 'anon-other']);
  });
});

describe('summarizeSmaps and pageTablesKib', () => {
  it('sums each kind, every kind present', () => {
    const s = summarizeSmaps(parseSmaps(CLONE), { ramPath: RAM_FILE, ramMib: 256, imagePaths: ['/var/lib/tfc/images/minimal-1/vmlinux'] });
    expect(s['guest-ram']).toEqual({ mappings: 1, sizeKib: 262144, rssKib: 40000, pssKib: 9000, privateDirtyKib: 5000 });
    expect(s['tcg-code'].privateDirtyKib).toBe(12000);
    expect(s.heap.pssKib).toBe(6000);
    expect(s['anon-other']).toMatchObject({ mappings: 3, pssKib: 104, privateDirtyKib: 104 });
    expect(s.files).toMatchObject({ mappings: 3, pssKib: 390, privateDirtyKib: 300 });
    expect(s['guest-image']).toMatchObject({ mappings: 1, pssKib: 45000, privateDirtyKib: 0 });
    // without the image paths, the kernel file is just another file
    expect(summarizeSmaps(parseSmaps(CLONE), { ramPath: RAM_FILE, ramMib: 256 }).files).toMatchObject({ mappings: 4, pssKib: 45390 });
    expect(summarizeSmaps([], { ramMib: 256 }).heap).toEqual({ mappings: 0, sizeKib: 0, rssKib: 0, pssKib: 0, privateDirtyKib: 0 });
  });

  it('reads VmPTE from /proc/PID/status text, 0 when absent', () => {
    expect(pageTablesKib('Name:\tqemu\nVmPTE:\t     356 kB\nVmSwap:\t0 kB\n')).toBe(356);
    expect(pageTablesKib('Name:\tqemu\n')).toBe(0);
  });
});
