// Turns zod issues into ConfigProblems (dotted key, bad value, line, rule) and
// all problems of one load into a single ConfigInvalidError.
import type { z } from 'zod';
import { ConfigInvalidError, type TfcError } from '../errors/index.js';
import { closest } from './did-you-mean.js';
import { knownKeysAt } from './schema.js';
import type { KeyLines } from './toml-lines.js';
import type { ConfigProblem } from './types.js';

function isTable(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);
}

function valueAt(doc: unknown, path: readonly string[]): unknown {
  let v = doc;
  for (const segment of path) {
    if (!isTable(v) || !Object.hasOwn(v, segment)) return undefined;
    v = v[segment];
  }
  return v;
}

/** Dotted key with segments that are not bare TOML keys quoted, as they would be written in the file. */
export function dottedKey(path: readonly PropertyKey[]): string {
  return path.map((s) => (typeof s === 'string' && /^[A-Za-z0-9_-]+$/.test(s) ? s : JSON.stringify(String(s)))).join('.');
}

/** A JSON-safe copy of a TOML value for `details` (dates become their TOML text). */
function jsonSafe(v: unknown): unknown {
  // TomlDate overrides toISOString to print the value as written (e.g. a bare date).
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (isTable(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonSafe(x)]));
  return v;
}

/** Short human rendering of a value for messages; tables render as undefined (not shown). */
function showValue(v: unknown): string | undefined {
  if (v === undefined || isTable(v)) return undefined;
  if (typeof v === 'string') return JSON.stringify(v);
  const text = v instanceof Date ? v.toISOString() : (JSON.stringify(jsonSafe(v)) ?? String(v));
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The problem of the value at `path` in `doc`, located by `lines` when given. */
export function problemAt(doc: unknown, path: readonly string[], message: string, lines?: KeyLines): ConfigProblem {
  const problem: ConfigProblem = { key: dottedKey(path), value: valueAt(doc, path), message };
  const line = lines?.lineOf(path);
  if (line !== undefined) problem.line = line;
  return problem;
}

/**
 * One problem per zod issue, except unknown keys: one problem per key, with
 * a suggestion when a known key is within 2 edits. `lines` is absent for
 * values that did not come from a file.
 */
export function problemsFromIssues(issues: readonly z.core.$ZodIssue[], doc: unknown, lines?: KeyLines): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const at = (path: string[], message: string) => problemAt(doc, path, message, lines);
  for (const issue of issues) {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(path);
      for (const key of issue.keys) {
        const guess = closest(key, known);
        const hint = guess ? `; did you mean ${JSON.stringify(guess)}?` : '';
        out.push(at([...path, key], `unknown key${hint} (allowed here: ${known.join(', ')})`));
      }
    } else {
      out.push(at(path, issue.message));
    }
  }
  return out;
}

/** `line 7: vmm.qemu.accel = "fast": must be one of ...` */
export function formatProblem(p: ConfigProblem): string {
  const where = p.env ? `env ${p.env}: ` : p.line !== undefined ? `line ${p.line}${p.column !== undefined ? `, column ${p.column}` : ''}: ` : '';
  const shown = showValue(p.value);
  const subject = p.key === undefined ? '' : `${p.key}${shown === undefined ? '' : ` = ${shown}`}: `;
  return `${where}${subject}${p.message}`;
}

/**
 * File problems in line order (unlocated ones after), then environment
 * problems, so the message reads top to bottom like the file.
 */
function ordered(problems: readonly ConfigProblem[]): ConfigProblem[] {
  const rank = (p: ConfigProblem) => (p.env ? 2 : p.line === undefined ? 1 : 0);
  return [...problems].sort((a, b) => rank(a) - rank(b) || (a.line ?? 0) - (b.line ?? 0));
}

/** One ConfigInvalidError listing every problem; `details: {file, errors}`. */
export function invalidConfigError(file: string | null, problems: readonly ConfigProblem[]): TfcError {
  const errors = ordered(problems);
  const title = file ? `invalid config ${file}:` : 'invalid config (no config file; from the environment):';
  const body = errors.map((p) => `  ${formatProblem(p)}`.replaceAll('\n', '\n    ')).join('\n');
  const details = errors.map((p) => (p.value === undefined ? p : { ...p, value: jsonSafe(p.value) }));
  return new ConfigInvalidError(`${title}\n${body}`, { details: { file, errors: details } });
}
