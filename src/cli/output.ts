import Table from 'cli-table3';

/** Writes one JSON document to stdout (the `--json` format of every command). */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Renders rows as a plain table (no colours, so logs and pipes stay readable). */
export function renderTable(head: string[], rows: Array<Array<string | number>>, align?: Array<'left' | 'right'>): string {
  const table = new Table({
    head,
    style: { head: [], border: [] },
    // No separator line between rows: phase tables stay short enough to read at a glance.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    ...(align ? { colAligns: align } : {}),
  });
  for (const row of rows) table.push(row.map(String));
  return table.toString();
}

export function formatMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}
