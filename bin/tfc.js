#!/usr/bin/env node
// Entry point of the `tfc` binary. Runs the bundled CLI (dist/tfc.mjs, which
// `npm run build` makes with scripts/bundle-cli.mjs: one file per command
// path instead of hundreds, so a one-shot command starts faster) when it is
// there and at least as new as tsc's dist/cli/main.js; otherwise, e.g. after
// a bare `tsc` run, the compiled modules of dist/cli/ as they are. Stack
// traces of the bundle map back to src/ with `node --enable-source-maps`.
import { statSync } from 'node:fs';

const BUNDLE = new URL('../dist/tfc.mjs', import.meta.url);
const MODULES = new URL('../dist/cli/main.js', import.meta.url);

function bundleIsCurrent() {
  const bundle = statSync(BUNDLE, { throwIfNoEntry: false });
  const modules = statSync(MODULES, { throwIfNoEntry: false });
  return bundle !== undefined && (modules === undefined || bundle.mtimeMs >= modules.mtimeMs);
}

try {
  const { main } = await import(bundleIsCurrent() ? BUNDLE.href : MODULES.href);
  process.exit(await main(process.argv));
} catch (err) {
  process.stderr.write(`tfc: unexpected error: ${err?.stack ?? err}\n`);
  process.exit(70);
}
