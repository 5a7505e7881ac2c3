/**
 * The package root: the directory of terraphim-firecracker's own
 * package.json, found by walking up from this module's file. Files the
 * package ships beside its code (the guest agent's C sources in src/agent,
 * vendor/) are found from it, wherever the code runs: src/ (tests), tsc's
 * output (dist/X/Y.js), the bundled CLI (dist/tfc.mjs, dist/chunks/*.mjs) or
 * an installed node_modules/terraphim-firecracker. A path relative to a
 * module's own import.meta.url breaks as soon as the module is bundled into
 * another directory; this does not. Must not import anything from the rest
 * of the project (every layer may use it).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The `name` in the package.json that marks the root (another package.json on the way up is skipped). */
export const PACKAGE_NAME = 'terraphim-firecracker';

/**
 * The nearest directory at or above `start` (a directory path or a file:
 * URL of a module) holding a package.json whose name is `name`. Unreadable
 * or malformed package.json files on the way are skipped. Throws an Error
 * naming `start` when the file system root is reached without one (an
 * install that lost its package.json). Reads the disk on every call.
 */
export function findPackageRoot(start: string | URL, name: string = PACKAGE_NAME): string {
  const from = typeof start === 'string' && !start.startsWith('file:') ? start : dirname(fileURLToPath(start));
  for (let dir = from; ; dir = dirname(dir)) {
    if (packageNameIn(dir) === name) return dir;
    if (dirname(dir) === dir) break;
  }
  throw new Error(
    `cannot find the ${name} package root: no package.json named "${name}" in ${from} or above it (reinstall the package, or run from its checkout)`,
  );
}

function packageNameIn(dir: string): string | undefined {
  try {
    const pkg: unknown = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    return pkg !== null && typeof pkg === 'object' && 'name' in pkg && typeof pkg.name === 'string' ? pkg.name : undefined;
  } catch {
    return undefined;
  }
}

let root: string | undefined;

/** This package's root directory (see findPackageRoot), looked up once per process. Throws as findPackageRoot does. */
export function packageRoot(): string {
  root ??= findPackageRoot(import.meta.url);
  return root;
}

/** `relative` (slash-separated; a trailing slash is kept) inside the package root, as an absolute path. Throws as packageRoot does. */
export function packagePath(relative: string): string {
  return join(packageRoot(), relative);
}
