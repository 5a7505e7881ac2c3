/**
 * `tfc vm run -- true` at the `instant` level, measured as a user runs it:
 * a new `node bin/tfc.js` process per run, from spawn to exit (the VM is
 * torn down by then) and from spawn to the first byte it writes (the
 * answer, written before the teardown). Issue 11 target: whole process
 * <= 350 ms.
 *
 * Part of the `limits` suite of `tfc bench`. Without a profile the runs use
 * a bench profile (image `minimal`, `boot_level = "instant"`) in a
 * temporary config file on the given config's data dir; its golden snapshot
 * is made by the first, untimed run. With a profile, the usual config
 * (TFC_CONFIG, ./tfc.toml) and that profile are used. Needs the `minimal` image (`tfc image build minimal`). Reports,
 * does not judge.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import { packagePath } from '../package-root.js';
import type { PhaseTiming } from '../steps/index.js';
import { dataLayout } from '../store/layout.js';
import { median } from './common.js';

export interface OneShotOptions {
  /** Whose data dir the bench profile's runs use. */
  config: Config;
  /** Timed runs (each: one plain run and one `--json` run); the figures are medians. */
  runs: number;
  /** A profile of the usual config at boot_level "instant". Default: the bench profile in a temporary config. */
  profile?: string;
  /** The `tfc` entry point to run. Default: this build's bin/tfc.js. */
  bin?: string;
  /** Progress lines. Default: none. */
  log?: (line: string) => void;
}

export interface OneShotFigures {
  /** Median ms from spawning `node bin/tfc.js vm run ... -- true` to its exit. */
  wholeMs: number;
  /** Median ms from spawning to the first byte it writes (for `true`, the `vm ... exit 0` line). */
  toOutputMs: number;
  /**
   * Median of each phase over the `--json` runs: `startup` (process start to
   * the first VM phase: Node, modules, config, store, drivers; absent from
   * builds that do not report it), then the run's own phases
   * (`golden_snapshot`, restore phases, `exec`, `stop`).
   */
  phases: PhaseTiming[];
  samples: { wholeMs: number[]; toOutputMs: number[] };
}

const BENCH_PROFILE = 'bench-one-shot';
const RUN_TIMEOUT_MS = 120_000;

interface ProcessRun {
  code: number | null;
  stdout: string;
  stderr: string;
  wholeMs: number;
  toOutputMs: number;
}

/** Runs `node BIN ...args` to completion, timing the first output byte and the exit. Never rejects for a non-zero exit. */
function timedRun(bin: string, args: string[]): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let toOutputMs: number | undefined;
    let wholeMs = 0;
    let stdout = '';
    let stderr = '';
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const first = () => (toOutputMs ??= performance.now() - started);
    child.stdout.on('data', (c: Buffer) => {
      first();
      stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      first();
      stderr += c.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', () => (wholeMs = performance.now() - started));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, wholeMs, toOutputMs: toOutputMs ?? wholeMs });
    });
  });
}

/**
 * Spawns `tfc vm run -- true` 2 * `runs` + 1 times (one untimed warm-up that
 * makes the golden snapshot when missing; then a plain run and a `--json`
 * run per iteration) and returns the medians. Throws when a run fails or
 * leaves its VM's run directory behind.
 */
export async function oneShotFigures(opts: OneShotOptions): Promise<OneShotFigures> {
  if (!Number.isInteger(opts.runs) || opts.runs < 1) throw new Error(`runs must be a positive integer, got ${opts.runs}`);
  const bin = opts.bin ?? packagePath('bin/tfc.js');
  const log = opts.log ?? (() => undefined);
  const usual = opts.config;
  let tempDir: string | undefined;
  let prefix: string[];
  if (opts.profile) {
    prefix = ['vm', 'run', '--profile', opts.profile];
  } else {
    tempDir = mkdtempSync(join(tmpdir(), 'tfc-one-shot-'));
    const config = join(tempDir, 'tfc.toml');
    // The usual data dir, so the built images (and the bench profile's golden snapshot) are found there.
    writeFileSync(config, `data_dir = ${JSON.stringify(usual.dataDir)}\n\n[profiles.${BENCH_PROFILE}]\nimage = "minimal"\nboot_level = "instant"\n`);
    prefix = ['--config', config, 'vm', 'run', '--profile', BENCH_PROFILE];
  }
  const runVms = dataLayout(usual.dataDir).runVms;
  const run = async (json: boolean): Promise<ProcessRun> => {
    const r = await timedRun(bin, [...prefix, ...(json ? ['--json'] : []), '--', 'true']);
    if (r.code !== 0) throw new Error(`tfc vm run exited ${r.code}:\n${r.stderr.slice(-2000)}`);
    // The process exits only after teardown: its VM's run directory must be gone.
    const vmId = json ? (JSON.parse(r.stdout) as { vm_id: string }).vm_id : /\bvm (vm-[0-9a-f]+) \(/.exec(r.stderr)?.[1];
    if (!vmId) throw new Error(`no VM id in the output of tfc vm run:\n${r.stderr.slice(-2000)}`);
    if (existsSync(join(runVms, vmId))) throw new Error(`tfc vm run exited but ${join(runVms, vmId)} is still there`);
    return r;
  };
  try {
    log('warm-up run (makes the golden snapshot when missing)');
    await run(true);
    const whole: number[] = [];
    const toOutput: number[] = [];
    const phaseSamples = new Map<string, number[]>();
    for (let i = 0; i < opts.runs; i++) {
      const plain = await run(false);
      whole.push(plain.wholeMs);
      toOutput.push(plain.toOutputMs);
      const json = JSON.parse((await run(true)).stdout) as { timings: { startup_ms?: number; phases: PhaseTiming[] } };
      const phases = [...(json.timings.startup_ms !== undefined ? [{ name: 'startup', ms: json.timings.startup_ms }] : []), ...json.timings.phases];
      for (const p of phases) phaseSamples.set(p.name, [...(phaseSamples.get(p.name) ?? []), p.ms]);
      log(`run ${i + 1}/${opts.runs}: whole ${plain.wholeMs.toFixed(0)} ms, to output ${plain.toOutputMs.toFixed(0)} ms`);
    }
    return {
      wholeMs: median(whole),
      toOutputMs: median(toOutput),
      phases: [...phaseSamples].map(([name, ms]) => ({ name, ms: Math.round(median(ms) * 100) / 100 })),
      samples: { wholeMs: whole, toOutputMs: toOutput },
    };
  } finally {
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  }
}
