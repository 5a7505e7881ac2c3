/**
 * The shape of `bench.json`, written by `tfc bench` and read back by
 * `tfc bench --compare`: the machine, each suite's raw samples and summary
 * figures, and the suites that were skipped with the reason. Bump
 * REPORT_VERSION on an incompatible change (a compare refuses other versions).
 */
import * as z from 'zod';

export const REPORT_VERSION = 1;

export const SUITE_NAMES = ['boot-levels', 'instant', 'allocation', 'throughput', 'density', 'python', 'privilege', 'limits'] as const;
export type SuiteName = (typeof SUITE_NAMES)[number];

const ms = z.number().nonnegative();
const samples = z.array(z.number());
const phase = z.object({ name: z.string(), ms: z.number() });
/** A figure that could not be computed (no samples) is null, never NaN. */
const maybe = z.number().nullable();

export const figureSchema = z.object({
  /** Stable within a suite; `--compare` matches figures by suite and key. */
  key: z.string().regex(/^[a-z0-9_.-]+$/),
  label: z.string(),
  value: maybe,
  /** ms, MiB, %, x, /s, ... ('' for a count). */
  unit: z.string(),
  /** Which direction is an improvement (for reading a compare ratio). */
  better: z.enum(['lower', 'higher']).optional(),
  goal: z.object({ op: z.enum(['<=', '>=']), value: z.number() }).optional(),
  met: z.boolean().optional(),
});
export type Figure = z.infer<typeof figureSchema>;

const bootLevelsData = z.object({
  runs: z.number().int().positive(),
  driver: z.string(),
  memoryMib: z.number(),
  vcpus: z.number(),
  levels: z.array(
    z.object({
      level: z.string(),
      kind: z.enum(['cold', 'restore']),
      kernelArgsAdded: z.array(z.string()),
      phases: z.array(z.array(phase)),
      readyMs: samples,
      kernelMs: samples,
      stopMs: samples,
    }),
  ),
});

const instantData = z.object({
  runs: z.number().int().positive(),
  coldMs: samples,
  coldToKernelMs: samples,
  restoredMs: samples,
  restoredStandbyMs: samples,
  coldPhases: z.array(z.array(phase)),
  restorePhases: z.array(z.array(phase)),
  standbyPhases: z.array(z.array(phase)),
  standbyWhy: z.string().optional(),
});

const allocationData = z.object({
  points: z.array(
    z.object({
      clients: z.number().int().positive(),
      requestsPerClient: z.number().int().positive(),
      latenciesMs: samples,
      serverMs: z.array(maybe),
      failures: z.number().int().nonnegative(),
      wallMs: ms,
    }),
  ),
});

const throughputData = z.object({
  cores: z.number().int().positive(),
  refillConcurrency: z.number().int().positive(),
  points: z.array(z.object({ concurrency: z.number().int().positive(), clones: z.number().int().positive(), wallMs: ms, perSec: z.number() })),
});

const kindTotals = z.object({ mappings: z.number(), sizeKib: z.number(), rssKib: z.number(), pssKib: z.number(), privateDirtyKib: z.number() });
const smapsSummary = z.object({ kinds: z.record(z.string(), kindTotals), pageTablesKib: z.number() });

const densityData = z.object({
  memoryMib: z.number(),
  requested: z.array(z.number().int().positive()),
  points: z.array(
    z.object({ clones: z.number().int().positive(), totalPssKib: z.number(), perClonePssKib: z.number(), coldPssKib: z.number(), coldImagePssKib: z.number() }),
  ),
  limited: z.object({ reached: z.number(), wanted: z.number(), why: z.string() }).optional(),
  breakdown: z.object({ clone: smapsSummary, cold: smapsSummary }),
});

const pythonData = z.object({
  runs: z.number().int().positive(),
  coldMs: samples,
  cloneMs: samples,
  runRewarmMs: samples,
  runNoRewarmMs: samples,
  transfer: z.object({ mib: z.number(), baselineMib: z.number(), peakMib: z.number(), sameSha256: z.boolean() }),
});

const privilegeData = z.object({
  runs: z.number().int().positive(),
  modes: z.array(z.object({ name: z.string(), dropPrivileges: z.boolean(), coldMs: samples, restoreMs: samples })),
});

const limitsData = z.object({
  /** Issue 11's table exactly as the terminal prints it. */
  rows: z.array(z.object({ figure: z.string(), measured: z.string(), goal: z.string(), met: z.string() })),
  /** The lines printed under it (phases, command line check, memory breakdown, ...). */
  notes: z.array(z.string()),
  /** Raw samples of the parts only this suite measures. */
  raw: z.object({
    markerMs: samples,
    agentMs: samples,
    stoppedMarkerMs: samples,
    stoppedAgentMs: samples,
    stoppedRunningMs: samples,
    why: z.string().optional(),
  }),
  load: z.record(z.string(), z.unknown()).optional(),
  oneShot: z.object({ wholeMs: samples, toOutputMs: samples, phases: z.array(phase) }).optional(),
});

const suiteBase = {
  title: z.string(),
  startedAt: z.string(),
  durationMs: ms,
  summary: z.array(figureSchema),
};

export const suiteResultSchema = z.discriminatedUnion('name', [
  z.object({ name: z.literal('boot-levels'), ...suiteBase, data: bootLevelsData }),
  z.object({ name: z.literal('instant'), ...suiteBase, data: instantData }),
  z.object({ name: z.literal('allocation'), ...suiteBase, data: allocationData }),
  z.object({ name: z.literal('throughput'), ...suiteBase, data: throughputData }),
  z.object({ name: z.literal('density'), ...suiteBase, data: densityData }),
  z.object({ name: z.literal('python'), ...suiteBase, data: pythonData }),
  z.object({ name: z.literal('privilege'), ...suiteBase, data: privilegeData }),
  z.object({ name: z.literal('limits'), ...suiteBase, data: limitsData }),
]);
export type SuiteResult = z.infer<typeof suiteResultSchema>;
export type SuiteData<N extends SuiteName> = Extract<SuiteResult, { name: N }>['data'];

export const machineSchema = z.object({
  cpuModel: z.string(),
  cores: z.number().int().positive(),
  memoryMib: z.number().int().nonnegative(),
  kernel: z.string(),
  driver: z.string(),
  qemuVersion: z.string().nullable(),
  accel: z.string(),
  accelReason: z.string().optional(),
  nodeVersion: z.string(),
  date: z.string(),
  gitCommit: z.string().nullable(),
  /** 1-minute load average at the start and at the end (others may share the machine). */
  loadAverage: z.object({ start: maybe, end: maybe }),
});
export type Machine = z.infer<typeof machineSchema>;

export const benchReportSchema = z.object({
  version: z.literal(REPORT_VERSION),
  generator: z.literal('tfc bench'),
  quick: z.boolean(),
  startedAt: z.string(),
  finishedAt: z.string(),
  machine: machineSchema,
  suites: z.array(suiteResultSchema),
  skipped: z.array(z.object({ name: z.enum(SUITE_NAMES), reason: z.string(), failed: z.boolean() })),
});
export type BenchReport = z.infer<typeof benchReportSchema>;

/** A number for JSON: non-finite (NaN, Infinity) becomes null. */
export function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}
