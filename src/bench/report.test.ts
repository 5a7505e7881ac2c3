import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TfcError } from '../errors/index.js';
import { cdfRows } from './charts.js';
import { compareReports, formatRatio, MAX_COMPARE_BYTES, readReport } from './compare.js';
import { escapeHtml, renderHtml } from './html.js';
import { benchReportSchema, SUITE_NAMES, type BenchReport, type Figure, type SuiteResult } from './report-schema.js';
import { suitesToRun } from './suites.js';
import { renderTerminal } from './terminal.js';

// bench.json and bench.html from synthetic results (the real run is
// test/bench-cli.test.ts): schema, one chart per suite, no URL, escaping,
// and the new/old ratios of --compare.

const phases = (kernel: number) => [
  { name: 'prepare', ms: 0.1 },
  { name: 'spawn_vmm', ms: 50 },
  { name: 'kernel', ms: kernel },
  { name: 'agent_ready', ms: 400 },
];
const fig = (key: string, value: number | null, extra: Partial<Figure> = {}): Figure => ({ key, label: `label of ${key}`, value, unit: 'ms', ...extra });
const kinds = Object.fromEntries(
  ['guest-ram', 'tcg-code', 'heap', 'anon-other', 'guest-image', 'files'].map((k) => [
    k,
    { mappings: 1, sizeKib: 10, rssKib: 5, pssKib: 4, privateDirtyKib: 3 },
  ]),
);
const base = { startedAt: '2026-12-01T00:00:00.000Z', durationMs: 1000 };

/** A report with every suite, `scale` multiplying the timings. */
function report(scale = 1, title = 'x'): BenchReport {
  const suites: SuiteResult[] = [
    {
      name: 'boot-levels',
      title,
      ...base,
      summary: [fig('standard.ready_ms', 2000 * scale)],
      data: {
        runs: 1,
        driver: 'qemu',
        memoryMib: 256,
        vcpus: 1,
        levels: [
          {
            level: 'standard',
            kind: 'cold',
            kernelArgsAdded: ['quiet'],
            phases: [phases(2000 * scale)],
            readyMs: [2450 * scale],
            kernelMs: [2000],
            stopMs: [30],
          },
          { level: 'instant', kind: 'restore', kernelArgsAdded: [], phases: [phases(1)], readyMs: [80], kernelMs: [], stopMs: [20] },
        ],
      },
    },
    {
      name: 'instant',
      title,
      ...base,
      summary: [
        fig('cold_ms', 2500 * scale),
        fig('restore_ms', 80 * scale),
        fig('restore_over_cold_pct', 3.2, { unit: '%', goal: { op: '<=', value: 5 }, met: true }),
      ],
      data: {
        runs: 2,
        coldMs: [2500, 2600],
        coldToKernelMs: [2000, 2100],
        restoredMs: [80, 90],
        restoredStandbyMs: [],
        coldPhases: [phases(2000)],
        restorePhases: [phases(1)],
        standbyPhases: [],
        standbyWhy: 'profiles.default.standby_vmms is 0',
      },
    },
    {
      name: 'allocation',
      title,
      ...base,
      summary: [fig('c1.p99_ms', 6 * scale), fig('c4.p99_ms', null)],
      data: {
        points: [
          { clients: 1, requestsPerClient: 3, latenciesMs: [2, 3, 6], serverMs: [0.2, null, 0.3], failures: 0, wallMs: 100 },
          { clients: 4, requestsPerClient: 1, latenciesMs: [5, 50, 90, 120], serverMs: [1, 2, 3, 4], failures: 0, wallMs: 300 },
        ],
      },
    },
    {
      name: 'throughput',
      title,
      ...base,
      summary: [fig('c1.per_sec_per_core', 4.6 / scale, { unit: '/s/core', better: 'higher' })],
      data: { cores: 2, refillConcurrency: 1, points: [{ concurrency: 1, clones: 4, wallMs: 400, perSec: 10 }] },
    },
    {
      name: 'density',
      title,
      ...base,
      summary: [fig('n1.per_clone_pss_mib', 40, { unit: 'MiB' })],
      data: {
        memoryMib: 256,
        requested: [1, 2],
        points: [
          { clones: 1, totalPssKib: 40_000, perClonePssKib: 40_000, coldPssKib: 200_000, coldImagePssKib: 48_000 },
          { clones: 2, totalPssKib: 70_000, perClonePssKib: 35_000, coldPssKib: 199_000, coldImagePssKib: 48_000 },
        ],
        breakdown: { clone: { kinds, pageTablesKib: 400 }, cold: { kinds, pageTablesKib: 600 } },
      },
    },
    {
      name: 'python',
      title,
      ...base,
      summary: [fig('clone_first_line_ms', 600)],
      data: {
        runs: 1,
        coldMs: [4000],
        cloneMs: [600],
        runRewarmMs: [240, 250],
        runNoRewarmMs: [640, 700],
        transfer: { mib: 64, baselineMib: 100, peakMib: 120, sameSha256: true },
      },
    },
    {
      name: 'privilege',
      title,
      ...base,
      summary: [fig('cold_ratio', 1.01, { unit: 'x' })],
      data: {
        runs: 1,
        modes: [
          { name: 'dropped', dropPrivileges: true, coldMs: [2500], restoreMs: [80] },
          { name: 'privileged', dropPrivileges: false, coldMs: [2480], restoreMs: [79] },
        ],
      },
    },
    {
      name: 'limits',
      title,
      ...base,
      summary: [
        fig('alloc_p99_ms', 6.4, { goal: { op: '<=', value: 5 }, met: false }),
        fig('restores_per_sec_per_core', 4.6, { unit: '/s/core', goal: { op: '>=', value: 5 }, met: false }),
        fig('overhead_agent_pct', -1.1, { unit: '%', goal: { op: '<=', value: 2 }, met: true }),
      ],
      data: {
        rows: [{ figure: 'warm allocation p99', measured: '6.40 ms', goal: '<= 5 ms', met: 'NO' }],
        notes: ['cold boot phases (median ms): prepare 0.1'],
        raw: { markerMs: [2100], agentMs: [2500], stoppedMarkerMs: [], stoppedAgentMs: [], stoppedRunningMs: [] },
      },
    },
  ];
  return {
    version: 1,
    generator: 'tfc bench',
    quick: true,
    startedAt: '2026-12-01T00:00:00.000Z',
    finishedAt: '2026-12-01T00:03:00.000Z',
    machine: {
      cpuModel: 'AMD EPYC',
      cores: 2,
      memoryMib: 24_000,
      kernel: '6.18.0',
      driver: 'qemu',
      qemuVersion: '7.2.22',
      accel: 'tcg',
      nodeVersion: 'v20.20.2',
      date: '2026-12-01T00:00:00.000Z',
      gitCommit: null,
      loadAverage: { start: 2.1, end: null },
    },
    suites,
    skipped: [],
  };
}

describe('bench report schema', () => {
  it('accepts a report with every suite and rejects a wrong version, an unknown suite or NaN', () => {
    expect(benchReportSchema.safeParse(report()).success).toBe(true);
    expect(benchReportSchema.safeParse({ ...report(), version: 2 }).success).toBe(false);
    const r = report();
    expect(benchReportSchema.safeParse({ ...r, suites: [{ ...r.suites[0], name: 'warp-speed' }] }).success).toBe(false);
    const nan = report();
    nan.suites[1].summary[0].value = Number.NaN;
    expect(benchReportSchema.safeParse(nan).success).toBe(false);
  });

  it('limits pulls in the suites whose numbers it reuses; no names means all, in run order', () => {
    expect(suitesToRun(['limits'])).toEqual(['instant', 'allocation', 'throughput', 'density', 'limits']);
    expect(suitesToRun(['density', 'boot-levels'])).toEqual(['boot-levels', 'density']);
    expect(suitesToRun([])).toEqual([...SUITE_NAMES]);
  });
});

describe('bench.html', () => {
  it('has one titled SVG chart per suite, a table per suite, and no http(s) URL', async () => {
    const html = await renderHtml(report());
    expect(html.match(/<svg/g)?.length).toBe(SUITE_NAMES.length);
    for (const name of SUITE_NAMES) expect(html).toContain(`<section id="suite-${name}">`);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script|<link|src=/i);
    // Chart titles are rendered as text inside the SVG.
    expect(html).toContain('Allocation latency CDF per number of concurrent clients');
    expect(html).toContain('Boot phases per level');
    expect(html.match(/<table/g)!.length).toBeGreaterThan(SUITE_NAMES.length);
  }, 60_000);

  it('only the suites that ran get a chart; skipped suites are listed with their reason', async () => {
    const r = report();
    r.suites = r.suites.filter((s) => s.name === 'instant' || s.name === 'density');
    r.skipped = [{ name: 'python', reason: 'the python image is not built', failed: false }];
    const html = await renderHtml(r);
    expect(html.match(/<svg/g)?.length).toBe(2);
    expect(html).toContain('the python image is not built');
  }, 60_000);

  it('escapes text from the report', async () => {
    const html = await renderHtml(report(1, '<img onerror=alert(1)> & "q"'));
    expect(html).not.toContain('<img onerror');
    expect(html).toContain('&lt;img onerror=alert(1)&gt; &amp; &quot;q&quot;');
    expect(escapeHtml(`<a href='x'>&</a>`)).toBe('&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;');
  }, 60_000);

  it('a latency CDF rises from 1/n to 1 over the sorted samples of each client count', () => {
    const rows = cdfRows([{ clients: 4, latenciesMs: [30, 10, 20] }]);
    expect(rows).toEqual([
      { clients: '4 clients', ms: 10, fraction: 1 / 3 },
      { clients: '4 clients', ms: 20, fraction: 2 / 3 },
      { clients: '4 clients', ms: 30, fraction: 1 },
    ]);
  });
});

describe('--compare', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-bench-compare-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('ratios new/old per suite and key; "-" where either side has no number', async () => {
    const c = compareReports(report(2), report(1));
    expect(c.get('instant')!.get('cold_ms')).toEqual({ old: 2500, ratio: 2 });
    expect(c.get('throughput')!.get('c1.per_sec_per_core')!.ratio).toBeCloseTo(0.5);
    expect(formatRatio(c.get('allocation')!.get('c4.p99_ms'))).toBe('-');
    const old = report(1);
    old.suites = old.suites.filter((s) => s.name !== 'density');
    expect(compareReports(report(), old).get('density')!.get('n1.per_clone_pss_mib')).toEqual({ old: null, ratio: null });

    const text = renderTerminal(report(2), c);
    expect(text).toContain('new / old');
    expect(text).toContain('2.00x');
    const html = await renderHtml(report(2), c, 'old.json');
    expect(html).toContain('<th>new / old</th>');
    expect(html).toContain('2.00x');
  }, 60_000);

  it('reads back a written report; refuses a non-report, non-JSON or oversized file naming it', () => {
    const good = join(dir, 'bench.json');
    writeFileSync(good, JSON.stringify(report()));
    expect(readReport(good).suites).toHaveLength(SUITE_NAMES.length);

    const refused = (path: string) => {
      try {
        readReport(path);
      } catch (err) {
        expect(err).toBeInstanceOf(TfcError);
        expect((err as TfcError).code).toBe('INVALID_ARGUMENT');
        return (err as Error).message;
      }
      throw new Error(`${path} was accepted`);
    };
    const wrong = join(dir, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ ...report(), version: 7 }));
    expect(refused(wrong)).toMatch(new RegExp(`^--compare ${wrong}: not a bench report.*version`));
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'hello');
    expect(refused(text)).toContain(`--compare ${text}: not JSON`);
    const big = join(dir, 'big.json');
    writeFileSync(big, '');
    truncateSync(big, MAX_COMPARE_BYTES + 1);
    expect(refused(big)).toContain(`--compare ${big}: the file is ${MAX_COMPARE_BYTES + 1} bytes`);
    expect(refused(join(dir, 'missing.json'))).toContain('cannot read the file');
  });
});
