/**
 * `tfc bench [suite...]`: runs the benchmark suites (src/bench/suites.ts)
 * on real VMs of this host and writes `bench.json` (src/bench/report-schema.ts)
 * and a self-contained `bench.html` with one chart per suite; prints the
 * tables. `--compare old.json` adds new/old ratios. Reports, does not judge:
 * exit 0 whether or not goals are met, 1 when a suite failed to run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { BootLevel } from '../../config/index.js';
import { InvalidArgumentError } from '../../errors/index.js';
import { BOOT_LEVELS } from '../../bench/boot-levels.js';
import { compareReports, readReport, type Comparison } from '../../bench/compare.js';
import { renderHtml } from '../../bench/html.js';
import { benchReportSchema, SUITE_NAMES, type SuiteName } from '../../bench/report-schema.js';
import { runBench } from '../../bench/suites.js';
import { renderTerminal } from '../../bench/terminal.js';
import type { WithContext } from '../context.js';

export interface BenchCliOptions {
  quick?: boolean;
  out: string;
  compare?: string;
  dataDir?: string;
  runs?: string;
  levels?: string;
  maxClones?: string;
}

/** The suite names given, checked; throws InvalidArgumentError naming the unknown one and the choices. */
export function parseSuites(words: readonly string[]): SuiteName[] {
  for (const w of words) {
    if (!(SUITE_NAMES as readonly string[]).includes(w)) throw new InvalidArgumentError(`unknown suite "${w}"; suites: ${SUITE_NAMES.join(', ')}`);
  }
  return words as SuiteName[];
}

function positiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new InvalidArgumentError(`${flag} must be a positive integer, got "${value}"`);
  return n;
}

/** `--levels a,b`: boot levels, checked; throws InvalidArgumentError naming the unknown one. */
export function parseLevels(value: string | undefined): BootLevel[] | undefined {
  if (value === undefined) return undefined;
  const levels = value.split(',').map((l) => l.trim());
  for (const l of levels) {
    if (!(BOOT_LEVELS as readonly string[]).includes(l)) throw new InvalidArgumentError(`--levels: unknown level "${l}"; levels: ${BOOT_LEVELS.join(', ')}`);
  }
  return levels as BootLevel[];
}

export function registerBench(program: Command, withContext: WithContext): void {
  program
    .command('bench')
    .description(`run benchmark suites on real VMs and write bench.json and bench.html (suites: ${SUITE_NAMES.join(', ')}; default all)`)
    .argument('[suite...]', 'suites to run (default: all)')
    .option('--quick', 'smallest sizes that still measure (a few minutes under TCG)')
    .option('--out <dir>', 'where bench.json and bench.html go', 'bench-report')
    .option('--compare <old.json>', 'a bench.json of an earlier run: adds new/old ratios')
    .option('--data-dir <dir>', 'data dir with the built images (default: the config data_dir)')
    .option('--runs <n>', 'runs of boot-levels, instant, python, privilege and of the `tfc vm run` figure')
    .option('--levels <list>', `boot-levels: only these levels (${BOOT_LEVELS.join(',')})`)
    .option('--max-clones <n>', 'density: the largest idle clone count (default 50; --quick 2)')
    .action(async (words: string[], opts: BenchCliOptions) => {
      process.exitCode = await withContext(
        async (ctx) => {
          const suites = parseSuites(words);
          const runs = positiveInt('--runs', opts.runs);
          const maxClones = positiveInt('--max-clones', opts.maxClones);
          const levels = parseLevels(opts.levels);
          // Read the old report first: a bad file fails before minutes of measuring.
          const old = opts.compare ? readReport(opts.compare) : undefined;
          const config = opts.dataDir ? { ...ctx.config, dataDir: resolve(opts.dataDir) } : ctx.config;
          const out = resolve(opts.out);
          mkdirSync(out, { recursive: true });
          const report = benchReportSchema.parse(
            await runBench({
              config,
              suites,
              quick: opts.quick ?? false,
              ...(runs ? { runs } : {}),
              ...(maxClones ? { maxClones } : {}),
              ...(levels ? { levels } : {}),
              log: (line) => process.stderr.write(`${line}\n`),
            }),
          );
          const comparison: Comparison | undefined = old ? compareReports(report, old) : undefined;
          const jsonPath = join(out, 'bench.json');
          const htmlPath = join(out, 'bench.html');
          writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
          writeFileSync(htmlPath, await renderHtml(report, comparison, opts.compare));
          process.stdout.write(renderTerminal(report, comparison));
          process.stderr.write(`wrote ${jsonPath} and ${htmlPath}\n`);
          const failed = report.skipped.filter((s) => s.failed);
          if (failed.length > 0) {
            process.stderr.write(`tfc bench: ${failed.length} suite(s) failed: ${failed.map((s) => s.name).join(', ')}\n`);
            return 1;
          }
          return 0;
        },
        { handleSignals: false },
      );
    });
}
