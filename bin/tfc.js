#!/usr/bin/env node
// Entry point of the `tfc` binary: runs the compiled CLI from dist/.
import { main } from '../dist/cli/main.js';

main(process.argv).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`tfc: unexpected error: ${err?.stack ?? err}\n`);
    process.exit(70);
  },
);
