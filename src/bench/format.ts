/**
 * Text of a report shared by the terminal and the HTML: numbers with their
 * units, goals, and the per-suite rows of figures.
 */
import { median } from './common.js';
import { formatRatio, type Comparison } from './compare.js';
import type { Figure, SuiteResult } from './report-schema.js';

/** A number with sensible precision for its size. */
export function formatNumber(v: number): string {
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export function formatValue(f: Pick<Figure, 'value' | 'unit'>): string {
  if (f.value === null) return 'not measured';
  if (f.unit === '') return String(f.value);
  return `${formatNumber(f.value)} ${f.unit}`;
}

export function formatGoal(f: Figure): string {
  return f.goal ? `${f.goal.op} ${f.goal.value} ${f.unit}`.trimEnd() : '';
}

export function formatMet(f: Figure): string {
  return f.met === undefined ? '' : f.met ? 'yes' : 'NO';
}

/** Head and rows of a suite's summary table; a `vs old` column when compared. */
export function figureRows(suite: SuiteResult, comparison?: Comparison): { head: string[]; rows: string[][] } {
  const ratios = comparison?.get(suite.name);
  const head = ['figure', 'measured', 'goal', 'met', ...(comparison ? ['old', 'new / old'] : [])];
  const rows = suite.summary.map((f) => {
    const r = ratios?.get(f.key);
    return [
      f.label,
      formatValue(f),
      formatGoal(f),
      formatMet(f),
      ...(comparison ? [r?.old === null || r?.old === undefined ? '-' : formatValue({ value: r.old, unit: f.unit }), formatRatio(r)] : []),
    ];
  });
  return { head, rows };
}

/** The boot-levels table: one row per level, as `tfc bench boot-levels` prints it. */
export function bootLevelRows(suite: Extract<SuiteResult, { name: 'boot-levels' }>): { head: string[]; rows: string[][] } {
  const std = suite.data.levels.find((l) => l.level === 'standard');
  return {
    head: ['level', 'agent ready ms (median)', 'kernel ms', 'stop ms', 'vs standard', 'kernel args added'],
    rows: suite.data.levels.map((l) => [
      l.kind === 'restore' ? `${l.level} (clone restore)` : l.level,
      median(l.readyMs).toFixed(0),
      l.kernelMs.length ? median(l.kernelMs).toFixed(0) : '-',
      median(l.stopMs).toFixed(0),
      std ? `${(median(l.readyMs) / median(std.readyMs)).toFixed(2)}x` : '-',
      l.kernelArgsAdded.join(' '),
    ]),
  };
}

/**
 * The tables under a suite, in order: its own table where it has one
 * (boot levels, limits), else its summary figures; with a comparison the
 * summary figures always follow, with their old values and ratios.
 */
export function suiteTables(suite: SuiteResult, comparison?: Comparison): Array<{ head: string[]; rows: string[][] }> {
  const own =
    suite.name === 'boot-levels'
      ? bootLevelRows(suite)
      : suite.name === 'limits'
        ? { head: ['figure', 'measured', 'goal', 'met'], rows: suite.data.rows.map((r) => [r.figure, r.measured, r.goal, r.met]) }
        : undefined;
  if (!own) return [figureRows(suite, comparison)];
  return comparison ? [own, figureRows(suite, comparison)] : [own];
}
