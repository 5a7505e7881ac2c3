// [images.NAME] tables, the built-in python/node images and profiles, and the
// profile fields warmup / disk_mib.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TfcError } from '../errors/index.js';
import { loadConfig, validateConfigFile } from './index.js';
import type { ConfigProblem } from './types.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tfc-config-images-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function loadText(text: string) {
  writeFileSync(join(dir, 'tfc.toml'), text);
  return loadConfig({ cwd: dir, uid: 1000, env: { HOME: '/home/u' } });
}

/** Every problem `text` has, as "KEY: MESSAGE" lines (plus line numbers). */
function problemsOf(text: string): ConfigProblem[] {
  try {
    loadText(text);
  } catch (err) {
    if (err instanceof TfcError && err.code === 'CONFIG_INVALID') return (err.details as { errors: ConfigProblem[] }).errors;
    throw err;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('built-in images and profiles', () => {
  it('python and node are Debian images with lean package lists, served by instant profiles that warm up', () => {
    const { config, sources } = loadText('');
    expect(Object.keys(config.images.definitions)).toEqual(['minimal', 'python', 'node']);
    expect(config.images.definitions.minimal).toEqual({ name: 'minimal', kind: 'minimal' });
    expect(config.images.definitions.node).toMatchObject({
      kind: 'debian',
      suite: 'bookworm',
      variant: 'minbase',
      packages: ['nodejs', 'ca-certificates', 'curl'],
    });
    expect(config.profiles.python).toMatchObject({ image: 'python', memoryMib: 512, bootLevel: 'instant', diskMib: 0 });
    expect(config.profiles.python.warmup[0]).toBe('python3');
    expect(config.profiles.node.warmup).toEqual(['node', '-e', "require('fs'); require('child_process')"]);
    expect(config.profiles.minimal).toMatchObject({ image: 'minimal', bootLevel: 'standard', warmup: [], diskMib: 0 });
    expect(sources['profiles.python.boot_level']).toEqual({ kind: 'default' });
    expect(sources['images.node.mirror']).toEqual({ kind: 'default' });
  });

  it('the file overrides single fields of the built-ins and keeps the others', () => {
    const { config, sources } = loadText(
      '[images.python]\npackages = ["python3", "python3-venv"]\n\n[profiles.python]\nmemory_mib = 1024\nwarmup = []\ndisk_mib = 256\n',
    );
    expect(config.images.definitions.python).toMatchObject({ kind: 'debian', suite: 'bookworm', packages: ['python3', 'python3-venv'] });
    expect(config.profiles.python).toMatchObject({ image: 'python', memoryMib: 1024, bootLevel: 'instant', warmup: [], diskMib: 256 });
    expect(sources['images.python.packages']).toMatchObject({ kind: 'file', line: 2 });
    expect(sources['images.python.suite']).toEqual({ kind: 'default' });
    expect(sources['profiles.python.disk_mib']).toMatchObject({ kind: 'file', line: 7 });
  });

  it('a built-in image may be redefined as another kind', () => {
    const { config } = loadText('[images.node]\nkind = "oci"\nsource = "/srv/node.tar"\n');
    expect(config.images.definitions.node).toEqual({ name: 'node', kind: 'oci', source: '/srv/node.tar', ref: '', extraMib: 64 });
  });
});

describe('[images.NAME]', () => {
  it('defines debian and oci images with defaults; a relative source is relative to the file', () => {
    const { config, sources } = loadText(
      [
        '[images]',
        'kernel_package = "linux-image-6.1.0-28-cloud-amd64"',
        '',
        '[images.tools]',
        'kind = "debian"',
        'suite = "trixie"',
        'packages = ["git", "curl=7.88.1-10+deb12u8"]',
        'extra_mib = 512',
        '',
        '[images.app]',
        'kind = "oci"',
        'source = "oci/app"',
        'ref = "v1"',
        '',
        '[profiles.app]',
        'image = "app"',
      ].join('\n'),
    );
    expect(config.images.kernelPackage).toBe('linux-image-6.1.0-28-cloud-amd64');
    expect(config.images.definitions.tools).toEqual({
      name: 'tools',
      kind: 'debian',
      suite: 'trixie',
      variant: 'minbase',
      packages: ['git', 'curl=7.88.1-10+deb12u8'],
      mirror: 'http://deb.debian.org/debian',
      extraMib: 512,
    });
    expect(config.images.definitions.app).toEqual({ name: 'app', kind: 'oci', source: join(dir, 'oci/app'), ref: 'v1', extraMib: 64 });
    expect(sources['images.app.source']).toMatchObject({ kind: 'file', line: 12 });
    expect(sources['images.kernel_package']).toMatchObject({ kind: 'file', line: 2 });
    expect(config.profiles.app.image).toBe('app');
  });

  it('a profile may name an image defined nowhere in the file (built with --from-oci); only the name is checked', () => {
    expect(loadText('[profiles.web]\nimage = "my-web"\n').config.profiles.web.image).toBe('my-web');
    expect(problemsOf('[profiles.web]\nimage = "My Web"\n')).toEqual([
      expect.objectContaining({ key: 'profiles.web.image', line: 2, message: expect.stringContaining('must be an image name matching') }),
    ]);
  });

  it('reports a missing kind, a missing source, fields of the other kind, bad names and bad values, each with its line', () => {
    const errors = problemsOf(
      [
        '[images.nokind]', // 1
        'packages = ["git"]',
        '[images.app]', // 3
        'kind = "oci"',
        'suite = "bookworm"', // 5
        '[images.deb]',
        'kind = "debian"',
        'packages = ["Bad Name"]', // 8
        'variant = "tiny"', // 9
        'mirror = "ftp://x"', // 10
        'extra_mib = -1', // 11
        '[images.minimal]', // 12
        'kind = "debian"',
        '[images.Upper]', // 14
        'kind = "debian"',
        '[images.x]',
        'kind = "zip"', // 17
      ].join('\n'),
    );
    const byKey = Object.fromEntries(errors.map((e) => [e.key, e]));
    expect(byKey['images.nokind'].message).toContain('missing kind: set kind = "debian"');
    expect(byKey['images.app'].message).toContain('kind = "oci" needs source = "PATH"');
    expect(byKey['images.app.suite']).toMatchObject({ line: 5, message: 'applies only to kind = "debian" images; this image has kind = "oci"' });
    expect(byKey['images.deb.packages.0']).toMatchObject({ line: 8, message: expect.stringContaining('must be a Debian package name') });
    expect(byKey['images.deb.variant']).toMatchObject({ line: 9, message: expect.stringContaining('"minbase"') });
    expect(byKey['images.deb.mirror']).toMatchObject({ line: 10, message: expect.stringContaining('URL of a Debian mirror') });
    expect(byKey['images.deb.extra_mib']).toMatchObject({ line: 11, message: 'must be an integer from 0 to 1048576' });
    expect(byKey['images.minimal']).toMatchObject({ line: 12, message: expect.stringContaining('has no settings') });
    expect(byKey['images.Upper'].message).toContain('invalid image name "Upper"');
    expect(byKey['images.x.kind']).toMatchObject({ line: 17, message: 'must be one of "debian", "oci"' });
  });

  it('an unknown key inside an image table and a stray scalar in [images] are explained', () => {
    const errors = problemsOf('[images]\nkernel_pakage = "auto"\n[images.t]\nkind = "debian"\npackage = ["git"]\n');
    const byKey = Object.fromEntries(errors.map((e) => [e.key, e]));
    expect(byKey['images.kernel_pakage'].message).toContain('the only plain key of [images] is kernel_package');
    expect(byKey['images.t.package'].message).toContain('did you mean "packages"?');
  });
});

describe('warmup and disk_mib', () => {
  it('validate their shapes', () => {
    const errors = problemsOf('[profiles.a]\nwarmup = "python3"\ndisk_mib = 2000000\n[profiles.b]\nwarmup = ["", "x"]\n');
    const byKey = Object.fromEntries(errors.map((e) => [e.key, e]));
    expect(byKey['profiles.a.warmup']).toMatchObject({ line: 2, message: expect.stringContaining('must be an argv array of strings') });
    expect(byKey['profiles.a.disk_mib']).toMatchObject({ line: 3, message: 'must be an integer from 0 to 1048576' });
    expect(byKey['profiles.b.warmup'].message).toContain('argv array');
  });

  it('validateConfigFile accepts a file using every new key', () => {
    const path = join(dir, 'ok.toml');
    writeFileSync(
      path,
      '[images.t]\nkind = "debian"\nsuite = "bookworm"\nvariant = "apt"\npackages = ["git"]\nmirror = "https://deb.debian.org/debian"\nextra_mib = 0\n[profiles.t]\nimage = "t"\nwarmup = ["git", "--version"]\ndisk_mib = 1024\n',
    );
    expect(validateConfigFile(path)).toEqual({ ok: true });
  });
});
