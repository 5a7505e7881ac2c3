import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DebianImageDefinition } from '../../config/index.js';
import { bootstrapDebian, debianContents, DPKG_PATH_FILTERS, mmdebstrapArgs, mmdebstrapVersion } from './debian.js';

const DEF: DebianImageDefinition = {
  name: 'py',
  kind: 'debian',
  suite: 'bookworm',
  variant: 'minbase',
  packages: ['python3', 'curl', 'python3', 'ca-certificates'],
  mirror: 'http://deb.debian.org/debian',
  extraMib: 64,
};

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tfc-debian-'));
});
afterEach(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

/** An executable stand-in for mmdebstrap in a directory put first in PATH. */
function fakeMmdebstrap(script: string): void {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  writeFileSync(join(dir, 'bin/mmdebstrap'), `#!/bin/sh\n${script}\n`);
  chmodSync(join(dir, 'bin/mmdebstrap'), 0o755);
  vi.stubEnv('PATH', `${join(dir, 'bin')}:${process.env.PATH}`);
}

describe('mmdebstrapArgs', () => {
  it('root mode, variant, sorted unique packages, the dpkg filters, then suite, target and mirror', () => {
    expect(mmdebstrapArgs(DEF, '/w/rootfs')).toEqual([
      '--mode=root',
      '--variant=minbase',
      '--quiet',
      '--include=ca-certificates,curl,python3',
      ...DPKG_PATH_FILTERS.map((f) => `--dpkgopt=${f}`),
      '--aptopt=Acquire::Languages "none"',
      'bookworm',
      '/w/rootfs',
      'http://deb.debian.org/debian',
    ]);
    expect(DPKG_PATH_FILTERS).toContain('path-exclude=/usr/share/doc/*');
    expect(DPKG_PATH_FILTERS.indexOf('path-include=/usr/share/doc/*/copyright')).toBeGreaterThan(DPKG_PATH_FILTERS.indexOf('path-exclude=/usr/share/doc/*'));
    expect(mmdebstrapArgs({ ...DEF, packages: [] }, '/w/r')).not.toContainEqual(expect.stringMatching(/^--include/));
  });

  it('keeps downloaded packages in a cache through mmdebstrap sync hooks, unless the path has whitespace', () => {
    const args = mmdebstrapArgs(DEF, '/w/rootfs', '/data/cache/debs/mmdebstrap');
    expect(args).toEqual(
      expect.arrayContaining([
        '--skip=download/empty',
        '--skip=essential/unlink',
        '--setup-hook=sync-in /data/cache/debs/mmdebstrap /var/cache/apt/archives/',
        '--customize-hook=sync-out /var/cache/apt/archives /data/cache/debs/mmdebstrap',
      ]),
    );
    expect(args.slice(-3)).toEqual(['bookworm', '/w/rootfs', 'http://deb.debian.org/debian']);
    expect(mmdebstrapArgs(DEF, '/w/rootfs', '/my data/cache').join(' ')).not.toContain('sync-in');
  });
});

describe('mmdebstrap on the host', () => {
  it('a missing mmdebstrap names the package to install', async () => {
    vi.stubEnv('PATH', join(dir, 'nothing'));
    await expect(mmdebstrapVersion()).rejects.toThrow('mmdebstrap not found: building a debian image needs it; install it with `apt-get install mmdebstrap`');
    await expect(bootstrapDebian(DEF, join(dir, 'out'))).rejects.toThrow('apt-get install mmdebstrap');
  });

  it('reads the version', async () => {
    fakeMmdebstrap('echo "mmdebstrap 1.3.5"');
    await expect(mmdebstrapVersion()).resolves.toBe('1.3.5');
  });

  it.skipIf(process.getuid?.() !== 0)('a failing bootstrap says which image, its packages, and what to check', async () => {
    fakeMmdebstrap('echo "E: Unable to locate package pyhton3" >&2; exit 1');
    await expect(bootstrapDebian({ ...DEF, packages: ['pyhton3'] }, join(dir, 'out'), { debCacheDir: join(dir, 'cache') })).rejects.toThrow(
      /mmdebstrap could not build image "py" \(bookworm, minbase, packages pyhton3\): .*Unable to locate package pyhton3.*check the package names in images\.py\.packages/s,
    );
  });

  it.skipIf(process.getuid?.() === 0)('refuses to run as a non-root user, saying why and what to run', async () => {
    fakeMmdebstrap('exit 0');
    await expect(bootstrapDebian(DEF, join(dir, 'out'))).rejects.toThrow(/needs root .*sudo tfc image build py/);
  });
});

describe('debianContents', () => {
  it('lists what dpkg installed next to what was asked', () => {
    mkdirSync(join(dir, 'var/lib/dpkg'), { recursive: true });
    writeFileSync(join(dir, 'var/lib/dpkg/status'), 'Package: python3\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.11.2-1+b1\n');
    expect(debianContents(dir, DEF, '1.3.5')).toEqual({
      kind: 'debian',
      suite: 'bookworm',
      variant: 'minbase',
      mirror: 'http://deb.debian.org/debian',
      requested: ['python3', 'curl', 'python3', 'ca-certificates'],
      mmdebstrap_version: '1.3.5',
      packages: [{ name: 'python3', version: '3.11.2-1+b1', architecture: 'amd64' }],
    });
    expect(debianContents(join(dir, 'none'), DEF, '1.3.5').packages).toEqual([]);
  });
});
