/**
 * The suites of `tfc bench`: each runs its measurements (the modules beside
 * this one) and returns a typed result with its raw samples and summary
 * figures. `runBench` runs the asked-for suites in a fixed order and
 * collects a report; it never judges (goals are reported as met or not).
 */
import { availableParallelism } from 'node:os';
import type { BootLevel, Config } from '../config/index.js';
import { resolveImage } from '../guest/image-store.js';
import { dataLayout } from '../store/index.js';
import { allocationLatency, type AllocationPoint } from './allocation.js';
import { bootLevels } from './boot-levels.js';
import { median, percentile, type BenchLog } from './common.js';
import { restoreVsBoot } from './instant.js';
import { attempt, limitsTable, rawCollector, type Outcome, type RawCollection } from './limits.js';
import { loadFigures } from './load.js';
import { collectMachine } from './machine.js';
import { hostMemory, idleDensity, type DensityResult } from './memory.js';
import { oneShotFigures } from './one-shot.js';
import { privilegeCost, privilegeUnsupported } from './privilege.js';
import { pythonFigures } from './python.js';
import { finiteOrNull, REPORT_VERSION, SUITE_NAMES, type BenchReport, type Figure, type SuiteName, type SuiteResult } from './report-schema.js';
import { restoreThroughput, type ThroughputPoint } from './throughput.js';

export interface BenchOptions {
  config: Config;
  /** Suites to run (default: all, in SUITE_NAMES order). `limits` also runs instant, allocation, throughput and density: it reuses their numbers. */
  suites?: readonly SuiteName[];
  /** Smallest sizes that still measure. */
  quick?: boolean;
  /** Overrides the runs of boot-levels, instant, python, privilege and of limits' `tfc vm run`. */
  runs?: number;
  /** boot-levels: only these levels. */
  levels?: readonly BootLevel[];
  /** density: the largest idle clone count (default 50; --quick: 2). */
  maxClones?: number;
  /** One line per step (stderr in the CLI). */
  log?: BenchLog;
}

const LIMITS_NEEDS: readonly SuiteName[] = ['instant', 'allocation', 'throughput', 'density'];

/** What one run shares between suites: limits reads the others' numbers. */
interface Shared {
  boots?: Outcome<Awaited<ReturnType<typeof restoreVsBoot>>>;
  raw?: RawCollection;
  allocation?: Outcome<AllocationPoint[]>;
  throughput?: Outcome<ThroughputPoint[]>;
  density?: Outcome<DensityResult>;
}

interface Ctx {
  config: Config;
  quick: boolean;
  runs: (full: number, quick: number) => number;
  opts: BenchOptions;
  selected: ReadonlySet<SuiteName>;
  shared: Shared;
  log: BenchLog;
}

type SuiteBody = Omit<SuiteResult, 'startedAt' | 'durationMs' | 'name'> & { name: SuiteName };

/** The suites in run order, with their titles. */
export const SUITE_TITLES: Readonly<Record<SuiteName, string>> = {
  'boot-levels': 'Boot levels: phases to agent ready per level',
  instant: 'Instant: clone restore vs cold boot',
  allocation: 'Allocation latency through the API',
  throughput: 'Restore throughput',
  density: 'Density: memory (PSS) of idle clones',
  python: 'Runtime image: python',
  privilege: 'Privilege model cost',
  limits: 'Limits (issue 11): figures against their goals',
};

const f = (key: string, label: string, value: number, unit: string, extra: Partial<Figure> = {}): Figure => ({
  key,
  label,
  value: finiteOrNull(value),
  unit,
  ...extra,
});
const goal = (value: number, op: '<=' | '>=', target: number): Partial<Figure> => ({
  better: op === '<=' ? 'lower' : 'higher',
  goal: { op, value: target },
  met: Number.isFinite(value) && (op === '<=' ? value <= target : value >= target),
});
const mib = (kib: number) => kib / 1024;
const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

async function bootLevelsSuite(ctx: Ctx): Promise<SuiteBody> {
  const r = await bootLevels(ctx.config, { runs: ctx.runs(3, 1), ...(ctx.opts.levels ? { levels: ctx.opts.levels } : {}), log: ctx.log });
  const std = r.levels.find((l) => l.level === 'standard');
  const summary: Figure[] = [];
  for (const l of r.levels) {
    summary.push(
      f(`${l.level}.ready_ms`, `${l.level}: ${l.kind === 'cold' ? 'cold boot' : 'clone restore'} to agent ready (median)`, median(l.readyMs), 'ms', {
        better: 'lower',
      }),
    );
    if (l.kind === 'cold') summary.push(f(`${l.level}.kernel_ms`, `${l.level}: kernel phase (median)`, median(l.kernelMs), 'ms', { better: 'lower' }));
    summary.push(f(`${l.level}.stop_ms`, `${l.level}: stop (median)`, median(l.stopMs), 'ms', { better: 'lower' }));
    if (std) summary.push(f(`${l.level}.vs_standard`, `${l.level}: agent ready / standard`, median(l.readyMs) / median(std.readyMs), 'x', { better: 'lower' }));
  }
  return {
    name: 'boot-levels',
    title: `${SUITE_TITLES['boot-levels']} (${plural(r.runs, 'interleaved run')}, ${r.driver}, ${r.memoryMib} MiB, ${r.vcpus} vCPU)`,
    summary,
    data: r,
  };
}

async function instantSuite(ctx: Ctx): Promise<SuiteBody> {
  const runs = ctx.runs(5, 2);
  const collector = ctx.selected.has('limits') ? rawCollector(runs, ctx.log) : undefined;
  if (collector) ctx.shared.raw = collector.raw;
  const outcome = await attempt('cold boot vs restore', () => restoreVsBoot(ctx.config, runs, { standby: true, log: ctx.log, ...collector?.hooks }), ctx.log);
  ctx.shared.boots = outcome;
  if (!outcome.ok) throw new Error(outcome.why);
  const r = outcome.value;
  const ratio = (r.restored / r.cold) * 100;
  const summary: Figure[] = [
    f('cold_ms', 'cold boot to agent ready (median)', r.cold, 'ms', { better: 'lower' }),
    f('restore_ms', 'clone restore to agent ready (median)', r.restored, 'ms', { better: 'lower' }),
    f('restore_over_cold_pct', 'clone restore / cold boot', ratio, '%', goal(ratio, '<=', 5)),
  ];
  if (r.restoredStandby !== undefined) {
    summary.push(f('standby_restore_ms', 'restore with a standby VMM waiting (median)', r.restoredStandby, 'ms', { better: 'lower' }));
    summary.push(f('standby_restore_over_cold_pct', 'restore with a standby VMM / cold boot', (r.restoredStandby / r.cold) * 100, '%', { better: 'lower' }));
  }
  const s = r.samples;
  return {
    name: 'instant',
    title: `${SUITE_TITLES.instant} (${plural(runs, 'interleaved run')})`,
    summary,
    data: {
      runs,
      coldMs: s.cold,
      coldToKernelMs: s.coldToKernel,
      restoredMs: s.restored,
      restoredStandbyMs: s.restoredStandby,
      coldPhases: s.coldPhases.map((p) => [...p]),
      restorePhases: s.restorePhases.map((p) => [...p]),
      standbyPhases: s.standbyPhases.map((p) => [...p]),
      ...(r.standbyWhy ? { standbyWhy: r.standbyWhy } : {}),
    },
  };
}

async function allocationSuite(ctx: Ctx): Promise<SuiteBody> {
  const clients = ctx.quick ? [1, 4] : [1, 4, 16];
  const perClient = (n: number) => (ctx.quick ? (n === 1 ? 10 : 3) : n === 1 ? 300 : n === 4 ? 50 : 20);
  const outcome = await attempt('allocation', () => allocationLatency(ctx.config, { clients, requestsPerClient: perClient, log: ctx.log }), ctx.log);
  ctx.shared.allocation = outcome;
  if (!outcome.ok) throw new Error(outcome.why);
  const summary: Figure[] = [];
  for (const p of outcome.value) {
    const l = p.latenciesMs;
    const server = p.serverMs.filter(Number.isFinite);
    const k = `c${p.clients}`;
    const p50 = percentile(l, 50);
    const p99 = percentile(l, 99);
    summary.push(
      f(`${k}.p50_ms`, `${p.clients} client(s): p50`, p50, 'ms', p.clients === 1 ? goal(p50, '<=', 5) : { better: 'lower' }),
      f(`${k}.p90_ms`, `${p.clients} client(s): p90`, percentile(l, 90), 'ms', { better: 'lower' }),
      f(`${k}.p99_ms`, `${p.clients} client(s): p99`, p99, 'ms', p.clients === 1 ? goal(p99, '<=', 20) : { better: 'lower' }),
      f(`${k}.max_ms`, `${p.clients} client(s): max`, Math.max(...l), 'ms', { better: 'lower' }),
      f(`${k}.server_p99_ms`, `${p.clients} client(s): in-daemon p99`, server.length ? percentile(server, 99) : Number.NaN, 'ms', { better: 'lower' }),
      f(`${k}.failures`, `${p.clients} client(s): failed allocations of ${l.length + p.failures}`, p.failures, '', { better: 'lower' }),
    );
  }
  return {
    name: 'allocation',
    title: `${SUITE_TITLES.allocation} (${clients.join(', ')} concurrent clients)`,
    summary,
    data: { points: outcome.value.map((p) => ({ ...p, requestsPerClient: perClient(p.clients), serverMs: p.serverMs.map(finiteOrNull) })) },
  };
}

async function throughputSuite(ctx: Ctx): Promise<SuiteBody> {
  const cores = availableParallelism();
  const refill = ctx.config.pools.default?.refillConcurrency ?? 1;
  const count = ctx.quick ? 4 : 20;
  const concurrencies = [...new Set([refill, cores])];
  const outcome = await attempt('restore throughput', () => restoreThroughput(ctx.config, count, concurrencies, ctx.log), ctx.log);
  ctx.shared.throughput = outcome;
  if (!outcome.ok) throw new Error(outcome.why);
  const summary: Figure[] = [];
  for (const p of outcome.value) {
    const perCore = p.perSec / cores;
    summary.push(
      f(`c${p.concurrency}.per_sec`, `${p.clones} clones, ${p.concurrency} at a time: clones per second`, p.perSec, '/s', { better: 'higher' }),
      f(
        `c${p.concurrency}.per_sec_per_core`,
        `${p.concurrency} at a time: per core (${cores} cores)`,
        perCore,
        '/s/core',
        p.concurrency === refill ? goal(perCore, '>=', 5) : { better: 'higher' },
      ),
    );
  }
  return {
    name: 'throughput',
    title: `${SUITE_TITLES.throughput} (${count} clones per batch, ${cores} cores)`,
    summary,
    data: { cores, refillConcurrency: refill, points: outcome.value },
  };
}

function densityCounts(ctx: Ctx): number[] {
  const max = ctx.opts.maxClones ?? (ctx.quick ? 2 : 50);
  const counts = (ctx.quick ? [1, 2] : [1, 10, 50]).filter((n) => n <= max);
  if (!counts.includes(max)) counts.push(max);
  return counts;
}

async function densitySuite(ctx: Ctx): Promise<SuiteBody> {
  const counts = densityCounts(ctx);
  ctx.log(`PSS at ${counts.join(', ')} idle clones vs one cold VM (${hostMemory().availableMib} MiB available)`);
  const outcome = await attempt('idle density', () => idleDensity(ctx.config, { counts, log: ctx.log }), ctx.log);
  ctx.shared.density = outcome;
  if (!outcome.ok) throw new Error(outcome.why);
  const d = outcome.value;
  const summary: Figure[] = [];
  for (const p of d.points) {
    summary.push(
      f(`n${p.clones}.per_clone_pss_mib`, `PSS per idle clone at ${p.clones}`, mib(p.perClonePssKib), 'MiB', { better: 'lower' }),
      f(`n${p.clones}.total_pss_mib`, `PSS of ${p.clones} idle clone(s) in total`, mib(p.totalPssKib), 'MiB', { better: 'lower' }),
      f(`n${p.clones}.over_cold_x`, `${p.clones} idle clone(s) / one cold VM`, p.totalPssKib / p.coldPssKib, 'x', { better: 'lower' }),
    );
  }
  const last = d.points.at(-1);
  if (last) summary.push(f('cold_pss_mib', 'one cold-booted VM (at the last count)', mib(last.coldPssKib), 'MiB', { better: 'lower' }));
  const kinds = (s: DensityResult['breakdown']['clone']) => ({ kinds: { ...s.kinds }, pageTablesKib: s.pageTablesKib });
  return {
    name: 'density',
    title: `${SUITE_TITLES.density} (${d.memoryMib} MiB profile)`,
    summary,
    data: {
      memoryMib: d.memoryMib,
      requested: counts,
      points: d.points,
      ...(d.limited ? { limited: d.limited } : {}),
      breakdown: { clone: kinds(d.breakdown.clone), cold: kinds(d.breakdown.cold) },
    },
  };
}

/** Why the python suite cannot run with `config`, or null. */
export function pythonUnavailable(config: Config): string | null {
  try {
    resolveImage(dataLayout(config.dataDir), 'python');
    return null;
  } catch {
    return `the python image is not built in ${config.dataDir} (\`tfc image build python\`)`;
  }
}

async function pythonSuite(ctx: Ctx): Promise<SuiteBody> {
  const runs = ctx.runs(3, 1);
  const r = await pythonFigures(ctx.config, { runs, requests: ctx.quick ? 3 : 50, transferMib: ctx.quick ? 64 : 1024, log: ctx.log });
  const ratio = (median(r.cloneMs) / median(r.coldMs)) * 100;
  const growth = r.transfer.peakMib - r.transfer.baselineMib;
  return {
    name: 'python',
    title: `${SUITE_TITLES.python} (${plural(runs, 'run')})`,
    summary: [
      f('clone_first_line_ms', "python3 -c 'print(1)': clone to first line (median)", median(r.cloneMs), 'ms', { better: 'lower' }),
      f('cold_first_line_ms', "python3 -c 'print(1)': cold boot to first line (median)", median(r.coldMs), 'ms', { better: 'lower' }),
      f('clone_over_cold_pct', 'clone / cold boot, to the first line', ratio, '%', goal(ratio, '<=', 10)),
      f('run_p50_ms', 'POST /v1/run hello-world p50 (pool of 2, rewarm)', percentile(r.runRewarmMs, 50), 'ms', { better: 'lower' }),
      f('run_p99_ms', 'POST /v1/run hello-world p99 (pool of 2, rewarm)', percentile(r.runRewarmMs, 99), 'ms', { better: 'lower' }),
      f('run_no_rewarm_p50_ms', 'the same without rewarm, p50', percentile(r.runNoRewarmMs, 50), 'ms', { better: 'lower' }),
      f('run_no_rewarm_p99_ms', 'the same without rewarm, p99', percentile(r.runNoRewarmMs, 99), 'ms', { better: 'lower' }),
      f(
        'transfer_rss_growth_mib',
        `daemon RSS growth during ${r.transfer.mib} MiB up + down (sha256 ${r.transfer.sameSha256 ? 'equal' : 'DIFFERENT'})`,
        growth,
        'MiB',
        {
          ...goal(growth, '<=', 128),
          met: r.transfer.sameSha256 && growth < 128,
        },
      ),
    ],
    data: r,
  };
}

async function privilegeSuite(ctx: Ctx): Promise<SuiteBody> {
  const runs = ctx.runs(5, 1);
  const modes = await privilegeCost(ctx.config, runs, ctx.log);
  const summary: Figure[] = [];
  modes.forEach((m, i) => {
    const k = m.dropPrivileges ? 'dropped' : 'privileged';
    summary.push(f(`${k}.cold_ms`, `${m.name}: cold boot (median)`, median(m.coldMs), 'ms', { better: 'lower' }));
    summary.push(f(`${k}.restore_ms`, `${m.name}: clone restore (median)`, median(m.restoreMs), 'ms', { better: 'lower' }));
    if (i === 1) {
      summary.push(f('cold_ratio', 'cold boot, dropped / privileged', median(modes[0].coldMs) / median(m.coldMs), 'x', { better: 'lower' }));
      summary.push(f('restore_ratio', 'clone restore, dropped / privileged', median(modes[0].restoreMs) / median(m.restoreMs), 'x', { better: 'lower' }));
    }
  });
  return { name: 'privilege', title: `${SUITE_TITLES.privilege} (${plural(runs, 'interleaved run')})`, summary, data: { runs, modes } };
}

async function limitsSuite(ctx: Ctx): Promise<SuiteBody> {
  const runs = ctx.runs(5, 2);
  const loadMs = (ctx.quick ? 10 : 60) * 1000;
  ctx.log(`allocation under Poisson arrivals at half the refill capacity (${loadMs / 1000} s)`);
  const load = await attempt('allocation under load', () => loadFigures(ctx.config, { durationMs: loadMs, rateFraction: 0.5, log: ctx.log }), ctx.log);
  ctx.log(`tfc vm run at the instant level, whole process (${plural(runs, 'run')})`);
  const oneShot = await attempt('one-shot run', () => oneShotFigures({ config: ctx.config, runs, log: ctx.log }), ctx.log);
  const missing = (what: string): Outcome<never> => ({ ok: false, why: `the ${what} suite did not run` });
  const allocation = ctx.shared.allocation ?? missing('allocation');
  const one = allocation.ok ? allocation.value.find((p) => p.clients === 1) : undefined;
  const alloc: Outcome<{ p50: number; p99: number; max: number; serverP99: number; count: number }> = !allocation.ok
    ? allocation
    : !one
      ? { ok: false, why: 'no one-client point' }
      : {
          ok: true,
          value: {
            p50: percentile(one.latenciesMs, 50),
            p99: percentile(one.latenciesMs, 99),
            max: Math.max(...one.latenciesMs),
            serverP99: percentile(one.serverMs.filter(Number.isFinite), 99),
            count: one.latenciesMs.length,
          },
        };
  const counts = densityCounts(ctx);
  const maxClones = Math.max(...counts);
  const raw = ctx.shared.raw ?? { why: 'the instant suite did not run', commandLine: [], free: emptyRaw(), stopped: emptyRaw() };
  const t = limitsTable({
    runs,
    maxClones,
    maxClonesWhy: ctx.opts.maxClones !== undefined ? `--max-clones ${ctx.opts.maxClones}` : ctx.quick ? '--quick' : `${maxClones} asked for`,
    cores: availableParallelism(),
    boots: ctx.shared.boots ?? missing('instant'),
    raw,
    alloc,
    load,
    throughput: ctx.shared.throughput ?? missing('throughput'),
    oneShot,
    density: ctx.shared.density ?? missing('density'),
  });
  return {
    name: 'limits',
    title: SUITE_TITLES.limits,
    summary: t.figures,
    data: {
      rows: t.rows.map(([figure, measured, goalText, met]) => ({ figure, measured, goal: goalText, met })),
      notes: t.notes,
      raw: {
        markerMs: raw.free.marker,
        agentMs: raw.free.agent,
        stoppedMarkerMs: raw.stopped.marker,
        stoppedAgentMs: raw.stopped.agent,
        stoppedRunningMs: raw.stopped.running,
        ...(raw.why ? { why: raw.why } : {}),
      },
      ...(load.ok
        ? { load: JSON.parse(JSON.stringify(load.value, (_k, v: unknown) => (typeof v === 'number' ? finiteOrNull(v) : v))) as Record<string, unknown> }
        : {}),
      ...(oneShot.ok ? { oneShot: { ...oneShot.value.samples, phases: oneShot.value.phases } } : {}),
    },
  };
}

const emptyRaw = () => ({ marker: [], agent: [], running: [] });

const SUITES: Readonly<Record<SuiteName, (ctx: Ctx) => Promise<SuiteBody>>> = {
  'boot-levels': bootLevelsSuite,
  instant: instantSuite,
  allocation: allocationSuite,
  throughput: throughputSuite,
  density: densitySuite,
  python: pythonSuite,
  privilege: privilegeSuite,
  limits: limitsSuite,
};

/** Why a suite cannot run here (it is reported as skipped), or null. */
function unavailable(name: SuiteName, config: Config): string | null {
  if (name === 'python') return pythonUnavailable(config);
  if (name === 'privilege') return privilegeUnsupported();
  return null;
}

/** The suites a run of `asked` executes, in run order: `limits` pulls in the suites whose numbers it reuses. */
export function suitesToRun(asked: readonly SuiteName[]): SuiteName[] {
  const set = new Set(asked.length ? asked : SUITE_NAMES);
  if (set.has('limits')) for (const s of LIMITS_NEEDS) set.add(s);
  return SUITE_NAMES.filter((s) => set.has(s));
}

/**
 * Runs the suites and returns the report. A suite that throws is reported
 * in `skipped` with `failed: true` and its error's first line; the others
 * still run. Throws only when the machine facts cannot be collected.
 */
export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  const log = opts.log ?? (() => undefined);
  const startedAt = new Date().toISOString();
  const machine = await collectMachine(opts.config);
  const names = suitesToRun(opts.suites ?? []);
  const quick = opts.quick ?? false;
  const ctx: Ctx = {
    config: opts.config,
    quick,
    runs: (full, q) => opts.runs ?? (quick ? q : full),
    opts,
    selected: new Set(names),
    shared: {},
    log: (line) => log(`  ${line}`),
  };
  const suites: SuiteResult[] = [];
  const skipped: BenchReport['skipped'] = [];
  for (const [i, name] of names.entries()) {
    const why = unavailable(name, opts.config);
    if (why) {
      log(`${i + 1}/${names.length} ${name}: skipped, ${why}`);
      skipped.push({ name, reason: why, failed: false });
      continue;
    }
    log(`${i + 1}/${names.length} ${name}: ${SUITE_TITLES[name]}`);
    const started = new Date();
    const t0 = performance.now();
    try {
      const body = await SUITES[name](ctx);
      suites.push({ ...body, startedAt: started.toISOString(), durationMs: performance.now() - t0 } as SuiteResult);
      log(`${i + 1}/${names.length} ${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).split('\n')[0];
      log(`${i + 1}/${names.length} ${name}: failed: ${message}`);
      skipped.push({ name, reason: `failed: ${message}`, failed: true });
    }
  }
  const end = await collectMachine(opts.config, { probe: false });
  return {
    version: REPORT_VERSION,
    generator: 'tfc bench',
    quick,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: { ...machine, loadAverage: { start: machine.loadAverage.start, end: end.loadAverage.start } },
    suites,
    skipped,
  };
}
