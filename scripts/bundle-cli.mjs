#!/usr/bin/env node
/**
 * Bundles the compiled CLI into one ES module plus lazily loaded chunks:
 * DIR/cli/main.js (tsc's output) -> DIR/tfc.mjs and DIR/chunks/*.mjs, with
 * linked source maps that lead back to src/ through tsc's own maps.
 * `npm run build` runs it after tsc; bin/tfc.js runs the bundle when it is
 * there and not older than DIR/cli/main.js.
 *
 *   node scripts/bundle-cli.mjs [--dir DIR]      (default: dist)
 *
 * Why: a one-shot `tfc vm run` spent about half of its whole run starting
 * Node and resolving and loading some 250 small modules; one file per
 * command path loads in a fraction of that. What stays lazy: every dynamic
 * import() of the sources (the command modules of src/cli/command-modules.ts,
 * the CLI context, the runtime of src/runtime/compose.ts and the drivers,
 * store and services it loads) becomes its own chunk, loaded only by the
 * commands that reach it, so `tfc vm run` still never loads the daemon,
 * fastify or pino. Only the packages in BUNDLED_PACKAGES are bundled; every
 * other package (better-sqlite3 is native, pino and fastify load files by
 * computed names, and any new dependency until someone checks it) is
 * imported from node_modules at run time, as without the bundle.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

/** Pure-JavaScript packages that most commands load (`tfc vm run` included), made of many files each. */
export const BUNDLED_PACKAGES = ['commander', 'zod', 'smol-toml'];

/** Where the chunks go, relative to the output directory (emptied of old chunks before each build). */
export const CHUNKS_DIR = 'chunks';

// Bundled CommonJS (commander) calls require() for Node's built-ins; an ES
// module has no require, so every output file gets one.
const REQUIRE_BANNER = "import { createRequire as __tfcCreateRequire } from 'node:module';\nconst require = __tfcCreateRequire(import.meta.url);";

/** `name` of a bare import (`@scope/name/sub` -> `@scope/name`), or undefined for relative and absolute paths. */
export function packageOf(specifier) {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('file:')) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Leaves every package but BUNDLED_PACKAGES (and every Node built-in) to Node's resolution at run time. */
const externalPackages = {
  name: 'tfc-external-packages',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (isBuiltin(args.path)) return { path: args.path, external: true };
      const pkg = packageOf(args.path);
      return pkg !== undefined && BUNDLED_PACKAGES.includes(pkg) ? undefined : { path: args.path, external: true };
    });
  },
};

/**
 * The esbuild options for bundling `entry` (the CLI's main module, .js from
 * tsc or the .ts source) into `outDir`/tfc.mjs and `outDir`/chunks/.
 * `metafile`: ask esbuild for the list of inputs of every output (tests).
 */
export function bundleOptions({ entry, outDir, metafile = false }) {
  return {
    entryPoints: [{ in: entry, out: 'tfc' }],
    outdir: outDir,
    bundle: true,
    // Code splitting: each dynamic import() target is a chunk of its own, loaded when imported.
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outExtension: { '.js': '.mjs' },
    entryNames: '[name]',
    chunkNames: `${CHUNKS_DIR}/[name]-[hash]`,
    plugins: [externalPackages],
    banner: { js: REQUIRE_BANNER },
    // Identifiers stay as written (readable stack traces). Where a name
    // clashes the bundle renames a symbol (today only commander's classes:
    // CommanderError -> CommanderError2) and without keepNames its `name`
    // follows. Nothing in tfc reads a class or function name (errors carry a
    // `code`; tfc's error classes set `name` themselves, commander's are
    // matched with instanceof), and keepNames' __name calls cost a one-shot
    // command about 10 ms of CPU (docs/performance.md).
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: false,
    sourcemap: 'linked',
    metafile,
    logLevel: 'warning',
  };
}

/** Removes chunks of an earlier build (their names carry content hashes, so they would pile up). */
function removeOldChunks(outDir) {
  const dir = join(outDir, CHUNKS_DIR);
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) if (name.endsWith('.mjs') || name.endsWith('.mjs.map')) rmSync(join(dir, name), { force: true });
}

/**
 * Bundles `outDir`/cli/main.js (or `entry`) into `outDir`. Resolves with
 * esbuild's result (its metafile when asked for); rejects when the entry
 * does not exist (tsc has not run) and with esbuild's errors.
 */
export async function bundleCli({ outDir, entry = join(outDir, 'cli', 'main.js'), metafile = false }) {
  if (!existsSync(entry)) throw new Error(`${entry} does not exist: compile the CLI first (npm run build runs tsc, then this script)`);
  removeOldChunks(outDir);
  return esbuild.build(bundleOptions({ entry, outDir, metafile }));
}

async function cli(argv) {
  const i = argv.indexOf('--dir');
  if (i >= 0 && !argv[i + 1]) throw new Error('--dir needs the directory tsc wrote the CLI to (default: dist)');
  const root = dirname(dirname(fileURLToPath(import.meta.url)));
  const outDir = resolve(root, i >= 0 ? argv[i + 1] : 'dist');
  const started = performance.now();
  await bundleCli({ outDir });
  process.stdout.write(`bundled the CLI into ${join(outDir, 'tfc.mjs')} (${Math.round(performance.now() - started)} ms)\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  cli(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`bundle-cli: ${err?.message ?? err}\n`);
    process.exit(1);
  });
}
