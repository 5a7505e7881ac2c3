import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { benchReportSchema } from '../src/bench/report-schema.js';
import { runCli } from '../src/testing/run-cli.js';
import { scratchDir, testDataDir } from './helpers.js';

// `tfc bench --quick` for real (in-process, real VMs under QEMU): a subset
// of the suites that fits the CI budget under TCG (boot-levels at the
// instant level only, instant, allocation, throughput, density). The other
// suites' charts are covered from synthetic results in src/bench/report.test.ts.

const SUITES = ['boot-levels', 'instant', 'allocation', 'throughput', 'density'];

describe('tfc bench --quick (real VMs)', () => {
  const out = scratchDir('tfc-bench-');
  beforeAll(() => {
    vi.stubEnv('TFC_DATA_DIR', testDataDir());
    vi.stubEnv('TFC_CONFIG', '');
  });
  afterAll(() => {
    vi.unstubAllEnvs();
    out.remove();
  });

  it('writes a bench.json that validates and a bench.html with one SVG chart per suite that ran', async () => {
    const r = await runCli(['bench', ...SUITES, '--quick', '--levels', 'instant', '--runs', '1', '--out', out.path]);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    // A progress line per step, and the tables on stdout.
    expect(r.stderr).toMatch(/^1\/5 boot-levels: /m);
    expect(r.stderr).toMatch(/^5\/5 density: done in /m);
    expect(r.stdout).toContain('instant: Instant: clone restore vs cold boot');

    const report = benchReportSchema.parse(JSON.parse(readFileSync(join(out.path, 'bench.json'), 'utf8')));
    expect(report.quick).toBe(true);
    expect(report.suites.map((s) => s.name)).toEqual(SUITES);
    expect(report.skipped).toEqual([]);
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(['tcg', 'kvm']).toContain(report.machine.accel);
    for (const suite of report.suites) {
      expect(suite.summary.length, suite.name).toBeGreaterThan(0);
      for (const f of suite.summary) if (!f.key.endsWith('failures')) expect(f.value, `${suite.name} ${f.key}`).not.toBeNull();
    }
    const instant = report.suites.find((s) => s.name === 'instant');
    if (instant?.name !== 'instant') throw new Error('no instant suite');
    expect(instant.data.coldMs).toHaveLength(1);
    expect(instant.data.restoredMs[0]).toBeLessThan(instant.data.coldMs[0]);
    const allocation = report.suites.find((s) => s.name === 'allocation');
    if (allocation?.name !== 'allocation') throw new Error('no allocation suite');
    expect(allocation.data.points.map((p) => p.clients)).toEqual([1, 4]);
    const density = report.suites.find((s) => s.name === 'density');
    if (density?.name !== 'density') throw new Error('no density suite');
    expect(density.data.points.map((p) => p.clones)).toEqual([1, 2]);

    const html = readFileSync(join(out.path, 'bench.html'), 'utf8');
    expect(html.match(/<svg/g)?.length).toBe(SUITES.length);
    for (const name of SUITES) expect(html).toMatch(new RegExp(`<section id="suite-${name}">[^]*?<svg[^]*?</section>`));
    expect(html).not.toMatch(/https?:\/\//);
  }, 420_000);
});
