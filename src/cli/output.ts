import { createRequire } from 'node:module';
import type CliTable3 from 'cli-table3';

// cli-table3 (CommonJS, with its string-width dependencies) is required only
// for a table that plainTable cannot draw: loading it cost a one-shot
// `tfc vm run` 10-40 ms on a busy 2-core machine.
const require = createRequire(import.meta.url);
let Table: typeof CliTable3 | undefined;

/** Writes one JSON document to stdout (the `--json` format of every command). */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Renders rows as a plain table (no colours, so logs and pipes stay readable). */
export function renderTable(head: string[], rows: Array<Array<string | number>>, align?: Array<'left' | 'right'>): string {
  const cells = rows.map((row) => row.map(String));
  return plainTable(head, cells, align) ?? cliTable(head, cells, align);
}

function cliTable(head: string[], rows: string[][], align?: Array<'left' | 'right'>): string {
  Table ??= require('cli-table3') as typeof CliTable3;
  const table = new Table({
    head,
    style: { head: [], border: [] },
    // No separator line between rows: phase tables stay short enough to read at a glance.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    ...(align ? { colAligns: align } : {}),
  });
  for (const row of rows) table.push(row);
  return table.toString();
}

/** Printable ASCII only: one character is one column, no line breaks, no escapes. */
const PLAIN_CELL = /^[\x20-\x7e]*$/;

/**
 * The same drawing as cliTable (a test compares them), for the common case:
 * every row as wide as the head, every cell printable ASCII.
 * Undefined for anything else (wide or combining characters, line breaks,
 * ragged rows), which cli-table3 draws.
 */
export function plainTable(head: string[], rows: string[][], align?: Array<'left' | 'right'>): string | undefined {
  const all = [head, ...rows];
  if (head.length === 0 || !all.every((row) => row.length === head.length && row.every((cell) => PLAIN_CELL.test(cell)))) return undefined;
  const widths = head.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  const rule = (left: string, mid: string, right: string) => left + widths.map((w) => '─'.repeat(w + 2)).join(mid) + right;
  const line = (row: string[]) => `│${row.map((cell, i) => ` ${align?.[i] === 'right' ? cell.padStart(widths[i]) : cell.padEnd(widths[i])} `).join('│')}│`;
  return [rule('┌', '┬', '┐'), ...all.map(line), rule('└', '┴', '┘')].join('\n');
}

export function formatMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}
