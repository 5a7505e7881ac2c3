/**
 * Issue 11's table (the `limits` suite of `tfc bench`), every row from one
 * run: how far the system is from the limits it measures itself against
 * (Firecracker's restore, density and creation-rate figures) and what the
 * orchestrator costs over QEMU itself.
 *
 * 1. clone restore to agent ready / cold boot (interleaved, medians), also
 *    with a standby VMM waiting, as the daemon restores (the `instant` suite);
 * 2. warm allocation p99, one client (the `allocation` suite);
 * 3. allocation p99 with Poisson arrivals at half the refill capacity
 *    (bench/load.ts loadFigures);
 * 4. clones restored per second per core (the `throughput` suite);
 * 5. ten idle clones / one cold VM (PSS), PSS per idle clone at 1, 10 and
 *    50, and where one idle clone's memory goes (the `density` suite);
 * 6. `tfc vm run` at the instant level as a whole process
 *    (bench/one-shot.ts oneShotFigures);
 * 7. orchestrator overhead over raw QEMU: the same command line started
 *    directly (bench/raw-qemu.ts), without -S, and, as a diagnostic, with
 *    tfc's -S and an immediate QMP `cont`, vs `tfc`'s cold boot phases,
 *    interleaved with the runs of 1 (rawCollector), to the init marker and
 *    to agent ready; the raw command line is checked against the one tfc ran.
 *
 * A part that fails says "not measured: <why>" in its rows; the others
 * still count. Reports, does not judge.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Table from 'cli-table3';
import { resolveProfile } from '../config/index.js';
import type { DriverInfo } from '../vmm/driver.js';
import type { Figure } from './report-schema.js';
import { median, medianPhases, msThrough, type BenchEnv, type BenchLog } from './common.js';
import type { BootSamples, RestoreVsBootOptions, restoreVsBoot } from './instant.js';
import type { LoadFiguresResult } from './load.js';
import type { DensityResult } from './memory.js';
import type { OneShotFigures } from './one-shot.js';
import { commandLineDifferences, normalizeCommandLine, rawBootUnsupported, rawColdBoot } from './raw-qemu.js';
import { MAPPING_KIND_LABELS, MAPPING_KINDS } from './smaps.js';
import type { ThroughputPoint } from './throughput.js';

type RestoreVsBoot = Awaited<ReturnType<typeof restoreVsBoot>>;

export type Row = [figure: string, measured: string, goal: string, met: string];

/** The value of a part, or why it could not be measured (its error's first line). */
export type Outcome<T> = { ok: true; value: T } | { ok: false; why: string };

export async function attempt<T>(label: string, fn: () => Promise<T>, log: BenchLog): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log(`${label} failed: ${err instanceof Error ? err.stack : message}`);
    return { ok: false, why: message.split('\n')[0] };
  }
}

const notMeasured = (why: string): string => `not measured: ${why}`;
const met = (ok: boolean): string => (ok ? 'yes' : 'NO');
const mib = (kib: number): string => (kib / 1024).toFixed(1);
const signedPercent = (ratio: number): string => `${ratio >= 1 ? '+' : ''}${((ratio - 1) * 100).toFixed(1)}%`;

function densityRows(outcome: Outcome<DensityResult>, maxClones: number, capWhy: string): Row[] {
  if (!outcome.ok) {
    return [
      ['10 idle clones / cold VM', notMeasured(outcome.why), '<= 1.3x', '-'],
      ['PSS per idle clone at 1 / 10 / 50', notMeasured(outcome.why), 'report', '-'],
    ];
  }
  const d = outcome.value;
  const at = (n: number) => d.points.find((p) => p.clones === n);
  const limitWhy = (n: number) => (n > maxClones ? capWhy : d.limited ? `${d.limited.reached} clones fit (${d.limited.why})` : 'not reached');
  const ten = at(10);
  const rows: Row[] = [
    ten
      ? [
          `ten idle clones / one cold VM (PSS; without the cold VM's ${mib(ten.coldImagePssKib)} MiB of mapped kernel and initrd files: ${(ten.totalPssKib / (ten.coldPssKib - ten.coldImagePssKib)).toFixed(2)}x)`,
          `${mib(ten.totalPssKib)} MiB / ${mib(ten.coldPssKib)} MiB = ${(ten.totalPssKib / ten.coldPssKib).toFixed(2)}x`,
          '<= 1.3x',
          met(ten.totalPssKib / ten.coldPssKib <= 1.3),
        ]
      : ['10 idle clones / cold VM', notMeasured(limitWhy(10)), '<= 1.3x', '-'],
  ];
  for (const n of [1, 10, 50]) {
    const p = at(n);
    rows.push([
      `PSS per idle clone at ${n} (${d.memoryMib} MiB profile)`,
      p ? `${mib(p.perClonePssKib)} MiB (${mib(p.totalPssKib)} MiB in total)` : notMeasured(limitWhy(n)),
      'report',
      '-',
    ]);
  }
  const last = d.points.at(-1);
  if (last && ![1, 10, 50].includes(last.clones)) {
    rows.push([
      `PSS per idle clone at ${last.clones} (most that fit)`,
      `${mib(last.perClonePssKib)} MiB (${mib(last.totalPssKib)} MiB in total)`,
      'report',
      '-',
    ]);
  }
  return rows;
}

export interface RawSamples {
  marker: number[];
  agent: number[];
  /** Spawn until QMP answered `cont` (the -S variant only). */
  running: number[];
}
const newRawSamples = (): RawSamples => ({ marker: [], agent: [], running: [] });

/** tfc's cold boot vs the raw QEMU runs interleaved with it: to the init marker and to agent ready, for each raw variant. */
function overheadRows(boots: Outcome<RestoreVsBoot>, raw: { why: string | undefined; free: RawSamples; stopped: RawSamples }): Row[] {
  const why = raw.why ?? (!boots.ok ? boots.why : raw.free.marker.length === 0 ? 'no raw run' : undefined);
  if (!boots.ok || why) return [['orchestrator overhead over raw QEMU, cold boot', notMeasured(why ?? 'no raw run'), '<= 2%', '-']];
  const tfc = { marker: median(boots.value.samples.coldToKernel), agent: boots.value.cold };
  const rows: Row[] = [];
  for (const [variant, samples, label] of [
    ['free', raw.free, 'raw QEMU without -S'],
    ['stopped', raw.stopped, 'raw QEMU with -S + QMP cont'],
  ] as const) {
    if (samples.marker.length === 0) continue;
    for (const point of ['marker', 'agent'] as const) {
      const r = median(samples[point]);
      const ratio = tfc[point] / r;
      rows.push([
        `orchestrator overhead over ${label}, cold boot to ${point === 'marker' ? 'the init marker' : 'agent ready'} (median of ${samples[point].length} interleaved${variant === 'stopped' ? '; diagnostic' : ''})`,
        `tfc ${tfc[point].toFixed(0)} ms vs raw ${r.toFixed(0)} ms = ${signedPercent(ratio)}`,
        '<= 2%',
        met(ratio <= 1.02),
      ]);
    }
  }
  if (raw.stopped.running.length > 0) {
    // The least noisy view: before the guest runs, both sides only start QEMU.
    const tfcBefore = median(boots.value.samples.coldPhases.map((phases) => msThrough(phases, 'start')));
    const rawBefore = median(raw.stopped.running);
    rows.push([
      `orchestrator time before the guest runs: tfc's prepare..start phases vs raw QEMU spawn to QMP \`cont\` answered (median of ${raw.stopped.running.length}; diagnostic)`,
      `tfc ${tfcBefore.toFixed(0)} ms vs raw ${rawBefore.toFixed(0)} ms: ${tfcBefore - rawBefore >= 0 ? '+' : ''}${(tfcBefore - rawBefore).toFixed(0)} ms = ${(((tfcBefore - rawBefore) / tfc.agent) * 100).toFixed(1)}% of the cold boot`,
      '<= 2%',
      met((tfcBefore - rawBefore) / tfc.agent <= 0.02),
    ]);
  }
  return rows;
}

function breakdownTable(d: DensityResult): string {
  const t = new Table({
    head: ['where (one idle clone vs the cold VM)', 'clone Private_Dirty MiB', 'clone PSS MiB', 'cold Private_Dirty MiB', 'cold PSS MiB'],
    style: { head: [], border: [] },
  });
  const { clone, cold } = d.breakdown;
  for (const k of MAPPING_KINDS) {
    t.push([
      MAPPING_KIND_LABELS[k],
      mib(clone.kinds[k].privateDirtyKib),
      mib(clone.kinds[k].pssKib),
      mib(cold.kinds[k].privateDirtyKib),
      mib(cold.kinds[k].pssKib),
    ]);
  }
  const total = (s: typeof clone, f: 'privateDirtyKib' | 'pssKib') => MAPPING_KINDS.reduce((a, k) => a + s.kinds[k][f], 0);
  t.push(['total', mib(total(clone, 'privateDirtyKib')), mib(total(clone, 'pssKib')), mib(total(cold, 'privateDirtyKib')), mib(total(cold, 'pssKib'))]);
  t.push(['page tables (VmPTE, outside PSS)', mib(clone.pageTablesKib), '', mib(cold.pageTablesKib), '']);
  return `where the memory goes, at ${d.points.at(-1)?.clones ?? 0} idle clones (smaps of the first clone and of the cold VM):\n${t.toString()}`;
}

/** What the raw QEMU runs interleaved with the cold boots collected. */
export interface RawCollection {
  why: string | undefined;
  commandLine: string[];
  free: RawSamples;
  stopped: RawSamples;
  /** The command line tfc ran for its first cold boot (normalized). */
  tfcCommandLine?: string[];
  driverInfo?: DriverInfo;
}

/**
 * Hooks for restoreVsBoot that run, in each run, the same QEMU command line
 * directly in two variants: as a hand-written command line would run (no
 * -S), and with tfc's own -S and a QMP `cont` as soon as QMP answers (tfc's
 * sequence without the rest of tfc). The first failure stops the raw runs
 * and is kept in `why`.
 */
export function rawCollector(runs: number, log: BenchLog): { raw: RawCollection; hooks: Pick<RestoreVsBootOptions, 'eachRun' | 'onColdBoot'> } {
  const raw: RawCollection = { why: undefined, commandLine: [], free: newRawSamples(), stopped: newRawSamples() };
  const onColdBoot = (vm: { id: string; pid?: number }, env: BenchEnv) => {
    raw.tfcCommandLine ??= normalizeCommandLine(readFileSync(`/proc/${vm.pid}/cmdline`, 'utf8').split('\0').slice(0, -1), {
      runDir: join(env.layout.runVms, vm.id),
      vmId: vm.id,
    });
  };
  const eachRun = async (run: number, env: BenchEnv) => {
    const profile = resolveProfile(env.config);
    raw.driverInfo ??= await env.service.driver(profile.driver).probe();
    raw.why ??= rawBootUnsupported(profile) ?? undefined;
    const variants = run % 2 === 0 ? (['free', 'stopped'] as const) : (['stopped', 'free'] as const);
    for (const variant of variants) {
      if (raw.why) return;
      const r = await attempt(
        `raw QEMU boot (${variant})`,
        () => rawColdBoot(env, profile, { timeoutMs: profile.bootTimeoutMs, prelaunchStop: variant === 'stopped' }),
        log,
      );
      if (!r.ok) {
        raw.why = r.why;
        return;
      }
      if (variant === 'free') raw.commandLine = r.value.commandLine;
      raw[variant].marker.push(r.value.toMarkerMs);
      raw[variant].agent.push(r.value.toAgentMs);
      if (r.value.toRunningMs !== undefined) raw[variant].running.push(r.value.toRunningMs);
      log(
        `run ${run + 1}/${runs}: raw QEMU ${variant === 'free' ? 'without -S' : 'with -S + QMP cont'}: init marker ${r.value.toMarkerMs.toFixed(0)} ms, agent ${r.value.toAgentMs.toFixed(0)} ms`,
      );
    }
  };
  return { raw, hooks: { eachRun, onColdBoot } };
}

export interface LimitsInput {
  runs: number;
  /** The largest idle clone count asked for, and why no more (e.g. "--quick", "--max-clones 20"). */
  maxClones: number;
  maxClonesWhy: string;
  cores: number;
  boots: Outcome<RestoreVsBoot>;
  raw: RawCollection;
  alloc: Outcome<{ p50: number; p99: number; max: number; serverP99: number; count: number }>;
  load: Outcome<LoadFiguresResult>;
  throughput: Outcome<ThroughputPoint[]>;
  oneShot: Outcome<OneShotFigures>;
  density: Outcome<DensityResult>;
}

const fig = (key: string, label: string, value: number, unit: string, op: '<=' | '>=', goal: number): Figure => ({
  key,
  label,
  value: Number.isFinite(value) ? value : null,
  unit,
  better: op === '<=' ? 'lower' : 'higher',
  goal: { op, value: goal },
  met: Number.isFinite(value) ? (op === '<=' ? value <= goal : value >= goal) : false,
});

/** The table's rows, the lines printed under it, and its goals as figures (for charts and --compare). Pure. */
export function limitsTable(input: LimitsInput): { rows: Row[]; notes: string[]; figures: Figure[] } {
  const { runs, cores, boots, raw, alloc, load, throughput, oneShot, density } = input;
  const rows: Row[] = [];
  const figures: Figure[] = [];
  if (boots.ok) {
    const { cold, restored } = boots.value;
    rows.push([
      `clone restore to agent ready / cold boot (median of ${runs} interleaved)`,
      `${restored.toFixed(1)} ms / ${cold.toFixed(0)} ms = ${((restored / cold) * 100).toFixed(2)}%`,
      '<= 1%',
      met(restored / cold <= 0.01),
    ]);
    figures.push(fig('restore_over_cold_pct', 'restore / cold boot', (restored / cold) * 100, '%', '<=', 1));
    const { restoredStandby, standbyWhy } = boots.value;
    if (restoredStandby !== undefined)
      figures.push(fig('standby_restore_over_cold_pct', 'standby restore / cold boot', (restoredStandby / cold) * 100, '%', '<=', 1));
    rows.push([
      `the same with a standby VMM waiting (the daemon's restores, profiles.X.standby_vmms; median of ${boots.value.samples.restoredStandby.length})`,
      restoredStandby !== undefined
        ? `${restoredStandby.toFixed(1)} ms / ${cold.toFixed(0)} ms = ${((restoredStandby / cold) * 100).toFixed(2)}%`
        : notMeasured(standbyWhy ?? 'no restore from a standby'),
      '<= 1%',
      restoredStandby !== undefined ? met(restoredStandby / cold <= 0.01) : '-',
    ]);
  } else {
    rows.push(['clone restore to agent ready / cold boot', notMeasured(boots.why), '<= 1%', '-']);
  }
  if (alloc.ok) {
    const a = alloc.value;
    rows.push([
      `warm allocation p99, one client (${a.count} requests; p50 ${a.p50.toFixed(2)}, max ${a.max.toFixed(2)}, in-daemon p99 ${a.serverP99.toFixed(2)} ms)`,
      `${a.p99.toFixed(2)} ms`,
      '<= 5 ms',
      met(a.p99 <= 5),
    ]);
    figures.push(fig('alloc_p99_ms', 'allocation p99, 1 client', a.p99, 'ms', '<=', 5));
  } else {
    rows.push(['allocation p99, 1 client', notMeasured(alloc.why), '<= 5 ms', '-']);
  }
  if (load.ok) {
    const l = load.value;
    rows.push([
      `allocation p99 at half refill capacity, Poisson (${l.ratePerSec.toFixed(2)}/s of ${l.capacityPerSec.toFixed(2)}/s capacity; ${l.count} requests, ${l.failures} failed, ${l.waited} waited for a VM; p50 ${l.p50.toFixed(1)}, max ${l.max.toFixed(1)}, in-daemon p99 ${l.serverP99.toFixed(1)}, event loop delay p99 ${l.eventLoopDelayP99.toFixed(1)} ms; pool target ${l.pool.target} of max ${l.pool.max})`,
      `${l.p99.toFixed(1)} ms`,
      '<= 20 ms',
      met(l.p99 <= 20 && l.failures === 0),
    ]);
    figures.push({
      ...fig('load_p99_ms', 'allocation p99 under load', l.p99, 'ms', '<=', 20),
      met: l.p99 <= 20 && l.failures === 0,
    });
  } else {
    rows.push(['allocation p99 at half refill capacity (Poisson)', notMeasured(load.why), '<= 20 ms', '-']);
  }
  if (throughput.ok) {
    const [pool, ...more] = throughput.value;
    const perCore = pool.perSec / cores;
    const extra = more.map((m) => `; at concurrency ${m.concurrency}: ${(m.perSec / cores).toFixed(2)}`).join('');
    rows.push([
      `clones restored per second per core (${pool.clones} clones, ${cores} cores, concurrency ${pool.concurrency} = pool refill_concurrency${extra}${load.ok ? `; under load: ${load.value.restoresPerSecPerCore.toFixed(2)}` : ''})`,
      `${perCore.toFixed(2)} (${pool.perSec.toFixed(2)}/s)`,
      '>= 5',
      met(perCore >= 5),
    ]);
    figures.push(fig('restores_per_sec_per_core', 'restores per s per core', perCore, '/s/core', '>=', 5));
  } else {
    rows.push(['restores per s per core', notMeasured(throughput.why), '>= 5', '-']);
  }
  rows.push(...densityRows(density, input.maxClones, input.maxClonesWhy));
  const ten = density.ok ? density.value.points.find((p) => p.clones === 10) : undefined;
  if (ten) figures.push(fig('ten_clones_over_cold_x', '10 idle clones / cold VM', ten.totalPssKib / ten.coldPssKib, 'x', '<=', 1.3));
  if (oneShot.ok) {
    const o = oneShot.value;
    rows.push([
      `\`tfc vm run\` instant, whole process (median of ${runs}; to output ${o.toOutputMs.toFixed(0)} ms)`,
      `${o.wholeMs.toFixed(0)} ms`,
      '<= 350 ms',
      met(o.wholeMs <= 350),
    ]);
    figures.push(fig('one_shot_ms', 'tfc vm run, whole', o.wholeMs, 'ms', '<=', 350));
  } else {
    rows.push(['tfc vm run, whole', notMeasured(oneShot.why), '<= 350 ms', '-']);
  }
  rows.push(...overheadRows(boots, raw));
  figures.push(...overheadFigures(boots, raw));

  const out: string[] = [];
  if (boots.ok) {
    const phases = (runs: BootSamples['coldPhases']) =>
      medianPhases(runs)
        .map((p) => `${p.name} ${p.ms.toFixed(1)}`)
        .join(', ');
    out.push(`cold boot phases (median ms): ${phases(boots.value.samples.coldPhases)}`);
    out.push(`clone restore phases (median ms): ${phases(boots.value.samples.restorePhases)}`);
    if (boots.value.samples.standbyPhases.length > 0) out.push(`restore from a standby VMM, phases (median ms): ${phases(boots.value.samples.standbyPhases)}`);
  }
  if (raw.tfcCommandLine && raw.commandLine.length > 0) {
    const diff = commandLineDifferences(raw.tfcCommandLine, raw.commandLine);
    out.push(
      diff.length === 0
        ? `raw QEMU command line: the one tfc ran, without -S: ${raw.commandLine.join(' ')}`
        : `raw QEMU command line DIFFERS from the one tfc ran (-: only tfc's, +: only raw): ${diff.join(' ')}`,
    );
  }
  if (density.ok) out.push(breakdownTable(density.value));
  if (oneShot.ok) out.push(`tfc vm run phases (median ms of the --json runs): ${oneShot.value.phases.map((p) => `${p.name} ${p.ms.toFixed(1)}`).join(', ')}`);
  return { rows, notes: out, figures };
}

/** The overhead rows' ratios as figures: (tfc / raw - 1) in %, goal <= 2%. */
function overheadFigures(boots: Outcome<RestoreVsBoot>, raw: RawCollection): Figure[] {
  if (!boots.ok || raw.why || raw.free.marker.length === 0) return [];
  const tfc = { marker: median(boots.value.samples.coldToKernel), agent: boots.value.cold };
  const out: Figure[] = [];
  for (const point of ['marker', 'agent'] as const) {
    const r = median(raw.free[point]);
    out.push(fig(`overhead_${point}_pct`, `overhead vs raw QEMU, ${point === 'marker' ? 'to marker' : 'to agent'}`, (tfc[point] / r - 1) * 100, '%', '<=', 2));
  }
  return out;
}

/** The table as the terminal prints it (fixed column widths, wrapped). */
export function renderLimitsTable(rows: readonly Row[]): string {
  const table = new Table({ head: ['figure', 'measured', 'goal', 'met'], style: { head: [], border: [] }, colWidths: [60, 44, 10, 5], wordWrap: true });
  table.push(...rows.map((r) => [...r]));
  return table.toString();
}
