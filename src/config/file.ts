// Reading one config file: text -> TOML document -> validated ConfigFile.
// Syntax errors stop here (nothing else can be checked); schema problems are
// returned, not thrown, so the caller can add environment problems to them.
import { readFileSync } from 'node:fs';
import { parse, TomlError } from 'smol-toml';
import { ConfigInvalidError } from '../errors/index.js';
import { describeOrigin, notFound, type LocatedConfigFile } from './locate.js';
import { formatProblem, problemAt, problemsFromIssues } from './problems.js';
import { ConfigFileSchema, crossKeyIssues, type ConfigFile } from './schema.js';
import { indexKeyLines, type KeyLines } from './toml-lines.js';
import type { ConfigProblem } from './types.js';

export interface CheckedFile {
  path: string;
  data: ConfigFile;
  lines: KeyLines;
  problems: ConfigProblem[];
}

/**
 * Reads, parses and validates `located.path`. Throws ConfigNotFoundError if
 * the file vanished, ConfigInvalidError on a TOML syntax error (with line
 * and column) or when the file cannot be read (a directory, no permission).
 */
export function readConfigFile(located: LocatedConfigFile): CheckedFile {
  const { path } = located;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw notFound(located, err);
    throw new ConfigInvalidError(`cannot read config file ${path} (${describeOrigin(located.from)}): ${(err as Error).message}`, {
      cause: err,
      details: { file: path, errors: [{ message: (err as Error).message }] },
    });
  }
  // A UTF-8 BOM is legal in TOML files written by some editors but not for the parser.
  if (text.startsWith('\uFEFF')) text = text.slice(1);

  let doc: Record<string, unknown>;
  try {
    doc = parse(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const reason = err.message.split('\n')[0].replace(/^Invalid TOML document:\s*/, '');
    const problem: ConfigProblem = { line: err.line, column: err.column, message: `TOML syntax error: ${reason}` };
    const excerpt = err.codeblock.trimEnd().replaceAll(/^/gm, '    ');
    throw new ConfigInvalidError(`invalid config ${path}:\n  ${formatProblem(problem)}\n${excerpt}`, {
      cause: err,
      details: { file: path, errors: [problem] },
    });
  }

  const lines = indexKeyLines(text);
  const result = ConfigFileSchema.safeParse(doc);
  const problems = [
    ...(result.success ? [] : problemsFromIssues(result.error.issues, doc, lines)),
    ...crossKeyIssues(doc).map((i) => problemAt(doc, i.path, i.message, lines)),
  ];
  if (result.success && problems.length === 0) return { path, data: result.data, lines, problems };
  return { path, data: {}, lines, problems };
}
