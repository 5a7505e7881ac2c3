/**
 * The report as text tables (cli-table3) for the terminal: per suite the
 * tables of format.ts suiteTables, with `new / old` under --compare.
 */
import Table from 'cli-table3';
import type { Comparison } from './compare.js';
import { suiteTables } from './format.js';
import { renderLimitsTable, type Row } from './limits.js';
import type { BenchReport } from './report-schema.js';

function table(head: string[], rows: string[][]): string {
  const t = new Table({ head, style: { head: [], border: [] }, wordWrap: true });
  t.push(...rows);
  return t.toString();
}

/** The whole report as text, one block per suite, then the skipped suites. */
export function renderTerminal(report: BenchReport, comparison?: Comparison): string {
  const m = report.machine;
  const out: string[] = [
    `tfc bench${report.quick ? ' --quick' : ''}, ${report.startedAt} to ${report.finishedAt}; ${m.cores} cores (${m.cpuModel}), ${m.memoryMib} MiB RAM, Linux ${m.kernel}, QEMU ${m.qemuVersion ?? 'unknown'} (${m.accel}), Node ${m.nodeVersion}, load average ${m.loadAverage.start ?? '?'} -> ${m.loadAverage.end ?? '?'}`,
  ];
  for (const suite of report.suites) {
    out.push('', `${suite.name}: ${suite.title} (${(suite.durationMs / 1000).toFixed(1)} s)`);
    suiteTables(suite, comparison).forEach((t, i) => {
      // The limits table keeps its fixed column widths; its notes follow it.
      out.push(suite.name === 'limits' && i === 0 ? renderLimitsTable(t.rows as Row[]) : table(t.head, t.rows));
      if (suite.name === 'limits' && i === 0) out.push(...suite.data.notes);
    });
  }
  for (const s of report.skipped) out.push('', `${s.name}: ${s.failed ? 'FAILED' : 'skipped'}: ${s.reason}`);
  return `${out.join('\n')}\n`;
}
