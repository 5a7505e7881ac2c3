/**
 * One chart per suite as a Vega-Lite spec built from the report's raw
 * samples, rendered to SVG in Node by Vega (no browser, no canvas, no
 * network: every spec carries its data inline).
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { median, medianPhases } from './common.js';
import type { SuiteResult } from './report-schema.js';

const WIDTH = 760;
const base = {
  width: WIDTH,
  background: 'white',
  config: { font: 'sans-serif', title: { fontSize: 14, anchor: 'start' as const }, legend: { labelLimit: 320 }, axis: { labelLimit: 320 } },
};

/** Rows of (clients, latency, fraction of requests at or below it). */
export function cdfRows(points: ReadonlyArray<{ clients: number; latenciesMs: readonly number[] }>): Array<{ clients: string; ms: number; fraction: number }> {
  const rows: Array<{ clients: string; ms: number; fraction: number }> = [];
  for (const p of points) {
    const sorted = [...p.latenciesMs].sort((a, b) => a - b);
    sorted.forEach((ms, i) => rows.push({ clients: `${p.clients} client${p.clients === 1 ? '' : 's'}`, ms, fraction: (i + 1) / sorted.length }));
  }
  return rows;
}

/** The Vega-Lite spec of a suite's chart. Pure. */
export function chartSpec(suite: SuiteResult): TopLevelSpec {
  switch (suite.name) {
    case 'boot-levels': {
      const values = suite.data.levels.flatMap((l) =>
        medianPhases(l.phases).map((p, order) => ({ level: l.kind === 'restore' ? `${l.level} (restore)` : l.level, phase: p.name, ms: p.ms, order })),
      );
      return {
        ...base,
        height: { step: 26 },
        title: 'Boot phases per level (median ms, stacked to agent ready)',
        data: { values },
        mark: { type: 'bar', tooltip: false },
        encoding: {
          y: { field: 'level', type: 'nominal', sort: null, title: null },
          x: { field: 'ms', type: 'quantitative', stack: 'zero', title: 'ms' },
          color: { field: 'phase', type: 'nominal', sort: null, title: 'phase' },
          order: { field: 'order', type: 'quantitative' },
        },
      };
    }
    case 'instant': {
      const d = suite.data;
      const values = [
        { what: 'cold boot', ms: median(d.coldMs) },
        { what: 'clone restore', ms: median(d.restoredMs) },
        ...(d.restoredStandbyMs.length ? [{ what: 'restore, standby VMM', ms: median(d.restoredStandbyMs) }] : []),
      ];
      return {
        ...base,
        title: 'Instant: restore vs cold boot to agent ready (median ms)',
        data: { values },
        encoding: { y: { field: 'what', type: 'nominal', sort: null, title: null }, x: { field: 'ms', type: 'quantitative', title: 'ms' } },
        layer: [{ mark: 'bar' }, { mark: { type: 'text', align: 'left', dx: 4 }, encoding: { text: { field: 'ms', type: 'quantitative', format: '.1f' } } }],
      };
    }
    case 'allocation':
      return {
        ...base,
        height: 300,
        title: 'Allocation latency CDF per number of concurrent clients',
        data: { values: cdfRows(suite.data.points) },
        mark: { type: 'line', interpolate: 'step-after', point: false },
        encoding: {
          x: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'request to response, ms (log scale)' },
          y: { field: 'fraction', type: 'quantitative', title: 'fraction of requests', axis: { format: '%' } },
          color: { field: 'clients', type: 'nominal', sort: null, title: null },
        },
      };
    case 'throughput': {
      const values = suite.data.points.map((p) => ({ at: `${p.concurrency} at a time`, perCore: p.perSec / suite.data.cores }));
      return {
        ...base,
        title: `Clones restored per second per core (${suite.data.cores} cores; goal >= 5)`,
        data: { values },
        layer: [
          {
            mark: 'bar',
            encoding: {
              y: { field: 'at', type: 'nominal', sort: null, title: null },
              x: { field: 'perCore', type: 'quantitative', title: 'clones / s / core' },
            },
          },
          {
            data: { values: [{ goal: 5 }] },
            mark: { type: 'rule', color: 'firebrick', strokeDash: [4, 3] },
            encoding: { x: { field: 'goal', type: 'quantitative' } },
          },
        ],
      };
    }
    case 'density': {
      const values = suite.data.points.flatMap((p) => [
        { clones: p.clones, series: 'all idle clones, total', mib: p.totalPssKib / 1024 },
        { clones: p.clones, series: 'per idle clone', mib: p.perClonePssKib / 1024 },
        { clones: p.clones, series: 'one cold-booted VM', mib: p.coldPssKib / 1024 },
      ]);
      return {
        ...base,
        height: 300,
        title: `Memory (PSS, MiB) against the number of idle clones (${suite.data.memoryMib} MiB profile)`,
        data: { values },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'clones', type: 'quantitative', title: 'idle clones', axis: { tickMinStep: 1 } },
          y: { field: 'mib', type: 'quantitative', title: 'PSS MiB' },
          color: { field: 'series', type: 'nominal', title: null },
        },
      };
    }
    case 'python': {
      const d = suite.data;
      const values = [
        { what: 'clone to first line', ms: median(d.cloneMs) },
        { what: 'cold boot to first line', ms: median(d.coldMs) },
        { what: 'POST /v1/run (rewarm)', ms: median(d.runRewarmMs) },
        { what: 'POST /v1/run (no rewarm)', ms: median(d.runNoRewarmMs) },
      ];
      return {
        ...base,
        title: 'Python runtime image (median ms)',
        data: { values },
        encoding: { y: { field: 'what', type: 'nominal', sort: null, title: null }, x: { field: 'ms', type: 'quantitative', title: 'ms' } },
        layer: [{ mark: 'bar' }, { mark: { type: 'text', align: 'left', dx: 4 }, encoding: { text: { field: 'ms', type: 'quantitative', format: '.0f' } } }],
      };
    }
    case 'privilege': {
      const values = suite.data.modes.flatMap((m) => [
        { mode: m.name, what: 'cold boot', ms: median(m.coldMs) },
        { mode: m.name, what: 'clone restore', ms: median(m.restoreMs) },
      ]);
      return {
        ...base,
        title: 'Privilege model: dropped vs privileged (median ms)',
        data: { values },
        mark: 'bar',
        encoding: {
          row: { field: 'what', type: 'nominal', title: null },
          y: { field: 'mode', type: 'nominal', title: null },
          x: { field: 'ms', type: 'quantitative', title: 'ms' },
          color: { field: 'mode', type: 'nominal', legend: null },
        },
        resolve: { scale: { x: 'independent' } },
      };
    }
    case 'limits': {
      // Distance to the goal: measured / goal for "<=", goal / measured for ">="; below 1 = met.
      const values = suite.summary
        .filter((f) => f.goal && f.value !== null)
        .map((f) => {
          const v = f.value as number;
          const g = f.goal!;
          const relative = f.key.startsWith('overhead_') ? (1 + v / 100) / (1 + g.value / 100) : g.op === '<=' ? v / g.value : g.value / v;
          return { figure: f.label, relative, met: f.met ? 'met' : 'not met' };
        })
        // A log scale has no place for 0 or less (a figure of 0 against a ">=" goal is infinitely far: left out).
        .filter((v) => Number.isFinite(v.relative) && v.relative > 0);
      return {
        ...base,
        width: WIDTH - 300,
        title: 'Limits: each figure relative to its goal (1 = at the goal, below = met)',
        data: { values },
        layer: [
          {
            mark: 'bar',
            encoding: {
              y: { field: 'figure', type: 'nominal', sort: null, title: null, axis: { labelLimit: 300 } },
              // From the goal (1) to the figure: left of the line = met.
              x: { field: 'relative', type: 'quantitative', scale: { type: 'log' }, axis: { format: '~g' }, title: 'measured relative to goal (log scale)' },
              x2: { datum: 1 },
              color: { field: 'met', type: 'nominal', scale: { domain: ['met', 'not met'], range: ['#2e7d32', '#c62828'] }, title: null },
            },
          },
          { data: { values: [{ one: 1 }] }, mark: { type: 'rule', strokeDash: [4, 3] }, encoding: { x: { field: 'one', type: 'quantitative' } } },
        ],
      };
    }
  }
}

/**
 * Renders a spec to an SVG element for inline use in HTML: the root's
 * namespace declarations are dropped (HTML puts inline <svg> in the SVG
 * namespace itself), so the markup holds no URL at all.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return svg.replace(/^<svg([^>]*)>/, (_m, attrs: string) => `<svg${attrs.replace(/\s+xmlns(:\w+)?="[^"]*"/g, '')} role="img">`);
  } finally {
    view.finalize();
  }
}
