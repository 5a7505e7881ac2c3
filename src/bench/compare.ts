/**
 * `tfc bench --compare old.json`: reads an earlier report (bounded, and
 * validated against the report schema) and pairs each summary figure of
 * the new run with the old one of the same suite and key.
 */
import { openSync, closeSync, fstatSync, readSync } from 'node:fs';
import { InvalidArgumentError } from '../errors/index.js';
import { benchReportSchema, type BenchReport } from './report-schema.js';

/** Largest --compare file read (a full report is well under 1 MiB). */
export const MAX_COMPARE_BYTES = 16 * 1024 * 1024;

/** new / old of one figure; null when either is missing or not a number, or old is 0. */
export interface FigureRatio {
  old: number | null;
  ratio: number | null;
}

/** `suite` -> figure key -> old value and ratio. */
export type Comparison = Map<string, Map<string, FigureRatio>>;

/**
 * Reads and validates a report written by `tfc bench`. Throws
 * InvalidArgumentError naming `path` and the problem: unreadable, larger
 * than MAX_COMPARE_BYTES, not JSON, or not a report of this version (the
 * first schema problems listed).
 */
export function readReport(path: string): BenchReport {
  let text: string;
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    if (size > MAX_COMPARE_BYTES)
      throw new InvalidArgumentError(`--compare ${path}: the file is ${size} bytes, more than the ${MAX_COMPARE_BYTES} bytes (16 MiB) a bench.json may have`);
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    text = buf.subarray(0, off).toString('utf8');
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    throw new InvalidArgumentError(`--compare ${path}: cannot read the file: ${(err as Error).message}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`--compare ${path}: not JSON (${(err as Error).message}); pass a bench.json written by \`tfc bench\``);
  }
  const parsed = benchReportSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`)
      .join('; ');
    throw new InvalidArgumentError(`--compare ${path}: not a bench report of version 1 written by \`tfc bench\`: ${problems}`);
  }
  return parsed.data;
}

/** Pairs every summary figure of `current` with `old`'s. Pure. */
export function compareReports(current: BenchReport, old: BenchReport): Comparison {
  const out: Comparison = new Map();
  for (const suite of current.suites) {
    const before = new Map((old.suites.find((s) => s.name === suite.name)?.summary ?? []).map((f) => [f.key, f.value]));
    const m = new Map<string, FigureRatio>();
    for (const fig of suite.summary) {
      const o = before.get(fig.key) ?? null;
      m.set(fig.key, { old: o, ratio: o !== null && o !== 0 && fig.value !== null ? fig.value / o : null });
    }
    out.set(suite.name, m);
  }
  return out;
}

/** "1.23x" or "-" for a ratio that could not be computed. */
export function formatRatio(r: FigureRatio | undefined): string {
  return r?.ratio === null || r?.ratio === undefined ? '-' : `${r.ratio.toFixed(2)}x`;
}
