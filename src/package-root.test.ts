import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPackageRoot, PACKAGE_NAME, packagePath, packageRoot } from './package-root.js';

const ROOT = resolve(import.meta.dirname, '..');

describe('package root', () => {
  let dir = '';
  let pkg = '';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-package-root-'));
    // An installed package: its root, a nested package.json without a name (dist/), and another package inside node_modules.
    pkg = join(dir, 'node_modules', PACKAGE_NAME);
    mkdirSync(join(pkg, 'dist/chunks'), { recursive: true });
    mkdirSync(join(pkg, 'dist/guest'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'some-app' }));
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: PACKAGE_NAME, version: '0.0.0' }));
    writeFileSync(join(pkg, 'dist/package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(join(pkg, 'dist/guest/package.json'), '{ not json');
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is this checkout for the sources (tests run from src/)', () => {
    expect(packageRoot()).toBe(ROOT);
    expect(packagePath('src/agent/')).toBe(join(ROOT, 'src/agent/'));
    expect(existsSync(packagePath('vendor/firecracker/firecracker.yaml'))).toBe(true);
  });

  it('walks up from nested directories and module URLs past package.json files of other names or none', () => {
    expect(findPackageRoot(join(pkg, 'dist/guest'))).toBe(pkg);
    expect(findPackageRoot(pathToFileURL(join(pkg, 'dist/chunks/chunk-X.mjs')).href)).toBe(pkg);
    expect(findPackageRoot(pathToFileURL(join(pkg, 'dist/tfc.mjs')))).toBe(pkg);
    expect(findPackageRoot(pkg)).toBe(pkg);
    expect(findPackageRoot(join(pkg, 'dist'), 'some-app')).toBe(dir);
  });

  it('names where it looked when there is no such package', () => {
    expect(() => findPackageRoot(join(pkg, 'dist/guest'), 'no-such-package')).toThrow(/no package\.json named "no-such-package" in .*dist\/guest or above/);
  });

  it('finds the root from a module bundled into dist/chunks/', async () => {
    const chunk = join(pkg, 'dist/chunks/probe.mjs');
    await build({
      stdin: { contents: `import { packageRoot } from ${JSON.stringify(join(ROOT, 'src/package-root.ts'))}; console.log(packageRoot());`, resolveDir: ROOT },
      bundle: true,
      format: 'esm',
      platform: 'node',
      outfile: chunk,
      logLevel: 'silent',
    });
    const { stdout } = await promisify(execFile)(process.execPath, [chunk], { timeout: 30_000 });
    expect(stdout.trim()).toBe(pkg);
  }, 60_000);
});
