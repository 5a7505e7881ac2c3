import { createRequire } from 'node:module';
import type CliTable3 from 'cli-table3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { plainTable, renderTable } from './output.js';

const Table = createRequire(import.meta.url)('cli-table3') as typeof CliTable3;

/** What renderTable drew with cli-table3 before it had a plain path: the reference. */
function viaCliTable3(head: string[], rows: string[][], align?: Array<'left' | 'right'>): string {
  const table = new Table({
    head,
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    ...(align ? { colAligns: align } : {}),
  });
  for (const row of rows) table.push(row);
  return table.toString();
}

const asciiCell = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 12 });

describe('renderTable', () => {
  it('draws printable-ASCII tables exactly as cli-table3 does', () => {
    const tables = fc.integer({ min: 1, max: 5 }).chain((cols) =>
      fc.record({
        head: fc.array(asciiCell, { minLength: cols, maxLength: cols }),
        rows: fc.array(fc.array(asciiCell, { minLength: cols, maxLength: cols }), { maxLength: 6 }),
        align: fc.option(fc.array(fc.constantFrom<'left' | 'right'>('left', 'right'), { maxLength: cols + 1 }), { nil: undefined }),
      }),
    );
    fc.assert(
      fc.property(tables, ({ head, rows, align }) => {
        expect(plainTable(head, rows, align)).toBe(viaCliTable3(head, rows, align));
      }),
      { numRuns: 300 },
    );
  });

  it('leaves wide characters, line breaks and ragged rows to cli-table3', () => {
    expect(plainTable(['name'], [['日本語']])).toBeUndefined();
    expect(plainTable(['name'], [['a\nb']])).toBeUndefined();
    expect(plainTable(['a', 'b'], [['x']])).toBeUndefined();
    expect(renderTable(['name'], [['日本語']])).toBe(viaCliTable3(['name'], [['日本語']]));
    expect(renderTable(['n', 'ms'], [['exec', 12.5]], ['left', 'right'])).toBe('┌──────┬──────┐\n│ n    │   ms │\n│ exec │ 12.5 │\n└──────┴──────┘');
  });
});
