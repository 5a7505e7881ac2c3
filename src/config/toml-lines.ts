// Best-effort map from TOML key paths to 1-based line numbers. smol-toml gives
// no positions, so we scan the text ourselves, tracking `[table]` headers.
// Handles bare/quoted/dotted keys, comments and multi-line strings; keys inside
// inline tables or multi-line arrays are not indexed (lookups fall back to the
// line of the enclosing key). Never throws: unparsable lines are skipped.

export interface KeyLines {
  /**
   * Line of `path`: the line that defines it, else the first line defining
   * something below it, else the line of its nearest defined ancestor.
   */
  lineOf(path: readonly string[]): number | undefined;
}

const BARE_KEY = /^[A-Za-z0-9_-]+/;

/** Parses a dotted key at `s[i]`; returns the segments and the index after it. */
function parseKey(s: string, i: number): { path: string[]; end: number } | undefined {
  const path: string[] = [];
  for (;;) {
    while (s[i] === ' ' || s[i] === '\t') i++;
    const ch = s[i];
    if (ch === '"') {
      // Basic string: decode common escapes through JSON, which shares them.
      let j = i + 1;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      if (j >= s.length) return undefined;
      try {
        path.push(JSON.parse(s.slice(i, j + 1)) as string);
      } catch {
        path.push(s.slice(i + 1, j));
      }
      i = j + 1;
    } else if (ch === "'") {
      const j = s.indexOf("'", i + 1);
      if (j < 0) return undefined;
      path.push(s.slice(i + 1, j));
      i = j + 1;
    } else {
      const m = BARE_KEY.exec(s.slice(i));
      if (!m) return undefined;
      path.push(m[0]);
      i += m[0].length;
    }
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (s[i] !== '.') return { path, end: i };
    i++;
  }
}

/** Which multi-line string delimiter is left open at the end of `rest`, if any. */
function openMultiline(rest: string): '"""' | "'''" | undefined {
  let open: '"""' | "'''" | undefined;
  let i = 0;
  while (i < rest.length) {
    if (open) {
      if (rest.startsWith(open, i)) {
        i += 3;
        open = undefined;
      } else i += open === '"""' && rest[i] === '\\' ? 2 : 1;
      continue;
    }
    if (rest.startsWith('"""', i) || rest.startsWith("'''", i)) {
      open = rest.slice(i, i + 3) as '"""' | "'''";
      i += 3;
    } else if (rest[i] === '"' || rest[i] === "'") {
      // Single-line string: skip it so a `#` or `"""` inside is not misread.
      const q = rest[i];
      i++;
      while (i < rest.length && rest[i] !== q) i += q === '"' && rest[i] === '\\' ? 2 : 1;
      i++;
    } else if (rest[i] === '#') {
      break;
    } else i++;
  }
  return open;
}

export function indexKeyLines(text: string): KeyLines {
  const entries: Array<{ path: string[]; line: number }> = [];
  const lines = text.split(/\r?\n/);
  let table: string[] = [];
  let inString: '"""' | "'''" | undefined;

  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n];
    if (inString) {
      // Re-scan from the closing delimiter as if it opened the line.
      const close = raw.indexOf(inString);
      if (close < 0) continue;
      inString = openMultiline(raw.slice(close + 3));
      continue;
    }
    const s = raw.trimStart();
    if (s === '' || s.startsWith('#')) continue;
    if (s.startsWith('[')) {
      const isArray = s.startsWith('[[');
      const key = parseKey(s, isArray ? 2 : 1);
      if (key) {
        table = key.path;
        entries.push({ path: table, line: n + 1 });
      }
      continue;
    }
    const key = parseKey(s, 0);
    if (!key || s[key.end] !== '=') continue;
    entries.push({ path: [...table, ...key.path], line: n + 1 });
    inString = openMultiline(s.slice(key.end + 1));
  }

  const same = (a: readonly string[], b: readonly string[], len: number) =>
    a.length >= len && b.length >= len && a.slice(0, len).every((seg, i) => seg === b[i]);

  return {
    lineOf(path) {
      const exact = entries.find((e) => e.path.length === path.length && same(e.path, path, path.length));
      if (exact) return exact.line;
      const below = entries.find((e) => e.path.length > path.length && same(e.path, path, path.length));
      if (below) return below.line;
      for (let len = path.length - 1; len > 0; len--) {
        const above = entries.find((e) => e.path.length === len && same(e.path, path, len));
        if (above) return above.line;
      }
      return undefined;
    },
  };
}
