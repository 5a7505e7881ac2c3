/**
 * `bench.html`: one self-contained page (inline CSS and SVG, no script, no
 * external URL) with the machine facts, then per suite its chart and its
 * table of figures (with `new / old` under --compare), then skipped suites.
 */
import type { Comparison } from './compare.js';
import { chartSpec, renderSvg } from './charts.js';
import { suiteTables } from './format.js';
import type { BenchReport, SuiteResult } from './report-schema.js';

/** Text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function table(head: readonly string[], rows: readonly (readonly string[])[], className = ''): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${r.map((c) => `<td${c === 'NO' ? ' class="no"' : c === 'yes' ? ' class="yes"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table${className ? ` class="${className}"` : ''}><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1180px; color: #222; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 10px 0; font-size: 12.5px; }
th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.yes { color: #2e7d32; font-weight: 600; }
td.no { color: #c62828; font-weight: 600; }
table.machine td:first-child { color: #555; }
.chart { margin: 8px 0; overflow-x: auto; }
.muted { color: #666; }
pre { background: #f7f7f7; padding: 8px; white-space: pre-wrap; font-size: 12px; }
`;

async function suiteSection(suite: SuiteResult, comparison?: Comparison): Promise<string> {
  const svg = await renderSvg(chartSpec(suite));
  const parts = [
    `<section id="suite-${escapeHtml(suite.name)}">`,
    `<h2>${escapeHtml(suite.name)}: ${escapeHtml(suite.title)}</h2>`,
    `<p class="muted">started ${escapeHtml(suite.startedAt)}, took ${(suite.durationMs / 1000).toFixed(1)} s</p>`,
    `<div class="chart">${svg}</div>`,
  ];
  suiteTables(suite, comparison).forEach((t, i) => {
    parts.push(table(t.head, t.rows));
    if (suite.name === 'limits' && i === 0 && suite.data.notes.length) parts.push(`<pre>${escapeHtml(suite.data.notes.join('\n'))}</pre>`);
  });
  parts.push('</section>');
  return parts.join('\n');
}

/** The page. `comparison` adds the old values and ratios; `comparedWith` names the old report. */
export async function renderHtml(report: BenchReport, comparison?: Comparison, comparedWith?: string): Promise<string> {
  const m = report.machine;
  const machine = table(
    ['fact', 'value'],
    [
      ['date', `${report.startedAt} to ${report.finishedAt}${report.quick ? ' (--quick)' : ''}`],
      ['CPU', `${m.cpuModel}, ${m.cores} cores`],
      ['memory', `${m.memoryMib} MiB`],
      ['kernel', m.kernel],
      ['VMM', `${m.driver}; QEMU ${m.qemuVersion ?? 'unknown'}, accelerator ${m.accel}${m.accelReason ? ` (${m.accelReason})` : ''}`],
      ['Node', m.nodeVersion],
      ['commit', m.gitCommit ?? 'unknown'],
      ['load average (1 min)', `${m.loadAverage.start ?? '?'} at the start, ${m.loadAverage.end ?? '?'} at the end`],
      ...(comparedWith ? [['compared with', comparedWith]] : []),
    ],
    'machine',
  );
  const sections: string[] = [];
  for (const suite of report.suites) sections.push(await suiteSection(suite, comparison));
  const skipped = report.skipped.length
    ? `<h2>Skipped suites</h2>\n${table(
        ['suite', 'why'],
        report.skipped.map((s) => [s.name, s.reason]),
      )}`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tfc bench ${escapeHtml(report.startedAt)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>tfc bench report</h1>
<p class="muted">Every figure comes from this run; compare ratios within one run, not absolute figures between machines or hours.</p>
${machine}
${sections.join('\n')}
${skipped}
</body>
</html>
`;
}
