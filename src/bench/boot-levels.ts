/**
 * Each boot optimisation level side by side in one run (the `boot-levels`
 * suite of `tfc bench`): levels are interleaved (standard, fast, ...,
 * standard, fast, ...) so host noise hits them alike. Each VM's own phases
 * (request to agent answering), the stop time, and for the `instant` level a
 * clone of the golden snapshot made with those arguments (made, untimed,
 * before the first run when missing).
 */
import { resolveProfile, type BootLevel, type Config } from '../config/index.js';
import type { PhaseTiming } from '../steps/index.js';
import { bootLevelArgs } from '../vm/boot-levels.js';
import { openBenchEnv, sum, type BenchLog } from './common.js';

export const BOOT_LEVELS: readonly BootLevel[] = ['standard', 'fast', 'ultrafast', 'sub2second', 'instant'];

export interface BootLevelSamples {
  level: BootLevel;
  /** `cold`: a cold boot with the level's kernel arguments; `restore`: a clone of the level's golden snapshot. */
  kind: 'cold' | 'restore';
  /** Kernel arguments this level adds to the one before it in BOOT_LEVELS (none for `instant`: it restores). */
  kernelArgsAdded: string[];
  /** Per run: the VM's phases, its time to agent ready (their sum), its `kernel` phase (cold only) and to stop it. */
  phases: PhaseTiming[][];
  readyMs: number[];
  kernelMs: number[];
  stopMs: number[];
}

export interface BootLevelsResult {
  runs: number;
  driver: string;
  memoryMib: number;
  vcpus: number;
  levels: BootLevelSamples[];
}

/** `runs` interleaved VMs of each of `levels` (in BOOT_LEVELS order) from the default profile. Throws when a VM fails to start or to run `true`. */
export async function bootLevels(config: Config, opts: { runs: number; levels?: readonly BootLevel[]; log?: BenchLog }): Promise<BootLevelsResult> {
  const log = opts.log ?? (() => undefined);
  const levels = BOOT_LEVELS.filter((l) => (opts.levels ?? BOOT_LEVELS).includes(l));
  const env = await openBenchEnv(config);
  const base = resolveProfile(env.config);
  let previous: string[] = [];
  const results: BootLevelSamples[] = levels.map((level) => {
    const args = level === 'instant' ? [] : bootLevelArgs(level);
    const added = args.filter((a) => !previous.includes(a));
    if (level !== 'instant') previous = args;
    return { level, kind: level === 'instant' ? 'restore' : 'cold', kernelArgsAdded: added, phases: [], readyMs: [], kernelMs: [], stopMs: [] };
  });
  try {
    if (levels.includes('instant')) await env.snapshots.ensure({ ...base, bootLevel: 'instant' });
    for (let run = 0; run < opts.runs; run++) {
      for (const r of results) {
        const profile = { ...base, bootLevel: r.level };
        const vm = r.kind === 'restore' ? await env.snapshots.clone(profile) : await env.service.create({ profile });
        const check = await vm.exec({ argv: ['true'] });
        if (check.exitCode !== 0) throw new Error(`level ${r.level}: guest command failed`);
        const stopStarted = performance.now();
        await env.service.destroy(vm);
        r.stopMs.push(performance.now() - stopStarted);
        r.phases.push(vm.bootPhases.map((p) => ({ name: p.name, ms: p.ms })));
        r.readyMs.push(sum(vm.bootPhases.map((p) => p.ms)));
        if (r.kind === 'cold') r.kernelMs.push(vm.bootPhases.find((p) => p.name === 'kernel')?.ms ?? 0);
        log(`run ${run + 1}/${opts.runs} ${r.level}: agent ready ${r.readyMs.at(-1)!.toFixed(0)} ms`);
      }
    }
  } finally {
    await env.close();
  }
  return { runs: opts.runs, driver: base.driver, memoryMib: base.memoryMib, vcpus: base.vcpus, levels: results };
}
