/**
 * The bundled CLI (scripts/bundle-cli.mjs, run by `npm run build`): the
 * modules src/ loads with a dynamic import() stay out of the entry file and
 * out of what it loads statically, so `tfc vm run` and `tfc --version` still
 * never load the daemon, fastify, pino or the drivers they do not use; and
 * bin/tfc.js runs the bundle from a package laid out as npm installs it.
 * Bundles from src/ into a temporary directory (esbuild takes about a
 * second), so the shared dist/ is neither needed nor touched.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLED_PACKAGES, bundleCli, packageOf } from '../../scripts/bundle-cli.mjs';

const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/** `import('./x.js')` targets of a source file, as .ts paths relative to ROOT. */
function dynamicImports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/\bimport\(\s*'(\.{1,2}\/[^']+)\.js'\s*\)/g)].map((m) => relative(ROOT, resolve(ROOT, dirname(file), `${m[1]}.ts`)));
}

/** Outputs loaded when `start` is loaded: it and, transitively, what it imports statically. Keys are absolute output paths. */
function staticClosure(meta: Metafile, start: string): string[] {
  const outputs = new Map(Object.entries(meta.outputs).map(([path, o]) => [resolve(ROOT, path), o]));
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    for (const i of outputs.get(path)?.imports ?? []) if (!i.external && i.kind === 'import-statement') visit(resolve(ROOT, i.path));
  };
  visit(start);
  return [...seen];
}

/** Source inputs (relative to ROOT) and external packages of the given outputs. */
function contents(meta: Metafile, outputs: string[]): { inputs: string[]; externals: string[] } {
  const byPath = new Map(Object.entries(meta.outputs).map(([path, o]) => [resolve(ROOT, path), o]));
  const chosen = outputs.map((p) => byPath.get(p)!);
  return {
    inputs: chosen.flatMap((o) => Object.keys(o.inputs)).map((p) => relative(ROOT, resolve(ROOT, p))),
    externals: chosen.flatMap((o) => o.imports.filter((i) => i.external && i.kind === 'import-statement').map((i) => i.path)),
  };
}

/** The output whose entry point is `source` (relative to ROOT); each dynamic import target gets one. */
function outputOf(meta: Metafile, source: string): string | undefined {
  const found = Object.entries(meta.outputs).find(([, o]) => o.entryPoint !== undefined && relative(ROOT, resolve(ROOT, o.entryPoint)) === source);
  return found && resolve(ROOT, found[0]);
}

describe('bundling the CLI', () => {
  let dir = '';
  let meta: Metafile;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-bundle-'));
    // A package as npm installs it: package.json, bin/, dist/ (the bundle only) and node_modules beside them.
    copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
    mkdirSync(join(dir, 'bin'));
    copyFileSync(join(ROOT, 'bin/tfc.js'), join(dir, 'bin/tfc.js'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    meta = (await bundleCli({ entry: join(ROOT, 'src/cli/main.ts'), outDir: join(dir, 'dist'), metafile: true })).metafile;
  }, 120_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('names packages by their import specifiers', () => {
    expect(packageOf('zod')).toBe('zod');
    expect(packageOf('zod/v4/core')).toBe('zod');
    expect(packageOf('@fastify/swagger')).toBe('@fastify/swagger');
    expect(packageOf('@fastify/swagger/index.js')).toBe('@fastify/swagger');
    expect(packageOf('./main.js')).toBeUndefined();
    expect(packageOf('/abs/path.js')).toBeUndefined();
  });

  it('makes every dynamic import of the CLI and the runtime a chunk of its own', () => {
    const lazy = ['src/cli/command-modules.ts', 'src/cli/main.ts', 'src/cli/context.ts', 'src/runtime/compose.ts'].flatMap(dynamicImports);
    expect(lazy).toEqual(expect.arrayContaining(['src/cli/commands/vm-run.ts', 'src/cli/commands/serve.ts', 'src/runtime/compose.ts', 'src/vmm/index.ts']));
    const entry = resolve(dir, 'dist/tfc.mjs');
    for (const source of lazy) {
      const output = outputOf(meta, source);
      expect(output, `no chunk for ${source}`).toBeDefined();
      // Not pulled into the entry's static imports, where it would load at start.
      expect(staticClosure(meta, entry), source).not.toContain(output);
    }
  });

  it('loads neither the daemon, the drivers nor fastify or pino at start, nor for `tfc vm run`', () => {
    const entry = resolve(dir, 'dist/tfc.mjs');
    const atStart = contents(meta, staticClosure(meta, entry));
    expect(atStart.inputs).toContain('src/cli/main.ts');
    expect(atStart.inputs.filter((p) => /^src\/(api|daemon|vmm|runtime|store|pool)\//.test(p))).toEqual([]);
    expect(atStart.externals).toEqual([]);

    // `tfc vm run`: the entry, the command module, then the runtime and its drivers as compose loads them.
    const vmRun = ['src/cli/commands/vm-run.ts', 'src/cli/context.ts', 'src/runtime/compose.ts', 'src/vmm/index.ts', 'src/store/index.ts', 'src/vm/index.ts']
      .map((s) => outputOf(meta, s)!)
      .flatMap((o) => staticClosure(meta, o));
    const loaded = contents(meta, [...new Set([...staticClosure(meta, entry), ...vmRun])]);
    expect(loaded.inputs).toContain('src/vmm/qemu/driver.ts');
    expect(loaded.inputs.filter((p) => /^src\/(api|daemon|pool|metrics)\//.test(p))).toEqual([]);
    expect(loaded.externals).toContain('better-sqlite3');
    expect(loaded.externals.filter((p) => /^(fastify|@fastify\/|pino|prom-client)/.test(p))).toEqual([]);
    // The serve chunk has them, as an import left to Node (not bundled).
    const serve = contents(meta, staticClosure(meta, outputOf(meta, 'src/cli/commands/serve.ts')!));
    expect(serve.externals).toContain('fastify');
    expect(serve.inputs.filter((p) => p.includes('node_modules/fastify/'))).toEqual([]);
  });

  it('bundles only the listed packages; the rest are imported from node_modules', () => {
    const bundled = new Set(
      Object.values(meta.outputs)
        .flatMap((o) => Object.keys(o.inputs))
        .filter((p) => p.includes('node_modules/'))
        .map((p) => packageOf(p.split('node_modules/').pop()!)),
    );
    expect([...bundled].sort()).toEqual([...BUNDLED_PACKAGES].sort());
    const text = readFileSync(join(dir, 'dist/tfc.mjs'), 'utf8');
    expect(text).not.toMatch(/fastify|QemuDriver/);
    expect(text).toMatch(/sourceMappingURL=tfc\.mjs\.map/);
  });

  it('runs from bin/tfc.js: --version, config show and a command that opens the store', async () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const env: NodeJS.ProcessEnv = { ...process.env, TFC_DATA_DIR: join(dir, 'data') };
    delete env.TFC_CONFIG;
    const tfc = (...args: string[]) => run(process.execPath, [join(dir, 'bin/tfc.js'), ...args], { cwd: dir, env, timeout: 60_000 });

    expect((await tfc('--version')).stdout).toBe(`${version}\n`);
    const shown = JSON.parse((await tfc('config', 'show', '--json')).stdout) as { config: { data_dir: string } };
    expect(shown.config.data_dir).toBe(join(dir, 'data'));
    // The store (better-sqlite3, native, left to node_modules) and the drivers load from chunks.
    expect(JSON.parse((await tfc('snapshot', 'ls', '--json')).stdout)).toEqual([]);
    expect(readdirSync(join(dir, 'data'))).toContain('tfc.db');
    // A usage error still exits 2 with Commander's message.
    await expect(tfc('vm', 'run', '--vcpus', '0', '--', 'true')).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/vcpus/) });
  }, 120_000);

  it('loads at run time only the chunks of the command being run', async () => {
    // A module loader hook (on Node's loader thread) that names every file of the bundle loaded.
    const hook = `data:text/javascript,import { writeSync } from 'node:fs'; export async function load(url, context, next) { if (url.includes('/dist/')) writeSync(2, 'LOADED ' + url + '\\n'); return next(url, context); }`;
    const register = `data:text/javascript,import { register } from 'node:module'; register(${JSON.stringify(hook)});`;
    const env: NodeJS.ProcessEnv = { ...process.env, TFC_DATA_DIR: join(dir, 'data') };
    delete env.TFC_CONFIG;
    const outputs = new Map(Object.entries(meta.outputs).map(([path, o]) => [resolve(ROOT, path), o]));
    const loaded = async (...args: string[]) => {
      const { stderr } = await run(process.execPath, ['--import', register, join(dir, 'bin/tfc.js'), ...args], { cwd: dir, env, timeout: 60_000 });
      const files = [...stderr.matchAll(/^LOADED file:\/\/(\S+)$/gm)].map((m) => m[1]);
      expect(files).toContain(join(dir, 'dist/tfc.mjs'));
      return files.flatMap((f) => Object.keys(outputs.get(f)?.inputs ?? {})).map((p) => relative(ROOT, resolve(ROOT, p)));
    };

    const version = await loaded('--version');
    expect(version.filter((p) => p.startsWith('src/cli/commands/'))).toEqual([]);
    const config = await loaded('config', 'show');
    expect(config).toContain('src/cli/commands/config.ts');
    // The CLI context knows the data dir's layout (a few path joins), not the store.
    expect(config.filter((p) => /^src\/(api|daemon|vmm|runtime)\/|^src\/store\/(?!layout\.ts)|^src\/cli\/commands\/(?!config)/.test(p))).toEqual([]);
  }, 60_000);

  it('bin/tfc.js prefers tsc output that is newer than the bundle (a bare tsc run after a build)', async () => {
    const main = join(dir, 'dist/cli/main.js');
    mkdirSync(dirname(main), { recursive: true });
    writeFileSync(main, "export async function main() { process.stdout.write('modules\\n'); return 0; }\n");
    try {
      const tfc = () => run(process.execPath, [join(dir, 'bin/tfc.js'), '--version'], { cwd: dir, timeout: 60_000 });
      const bundle = join(dir, 'dist/tfc.mjs');
      utimesSync(bundle, new Date(2000, 0, 1), new Date(2000, 0, 1));
      expect((await tfc()).stdout).toBe('modules\n');
      utimesSync(bundle, new Date(), new Date());
      utimesSync(main, new Date(2000, 0, 1), new Date(2000, 0, 1));
      expect((await tfc()).stdout).not.toBe('modules\n');
    } finally {
      rmSync(dirname(main), { recursive: true, force: true });
    }
  }, 60_000);
});
