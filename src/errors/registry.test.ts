import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_REGISTRY, isErrorCode } from './registry.js';
import * as errors from './index.js';
import { TfcError } from './index.js';

/** Rows of the docs/errors.md table: `| <a id="CODE"></a>`CODE` | STATUS | ...`. */
function documented(): Map<string, number> {
  const text = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, number>();
  for (const m of text.matchAll(/^\| <a id="([A-Z_]+)"><\/a>`([A-Z_]+)` \| (\d{3}) \|/gm)) {
    expect(m[1], `anchor and code differ in docs/errors.md row ${m[0]}`).toBe(m[2]);
    expect(rows.has(m[2]), `${m[2]} is documented twice`).toBe(false);
    rows.set(m[2], Number(m[3]));
  }
  return rows;
}

describe('error registry', () => {
  it('documents every code with its status, and nothing else', () => {
    const docs = documented();
    const registry = new Map(Object.entries(ERROR_REGISTRY).map(([code, e]) => [code, e.status as number]));
    expect(Object.fromEntries(docs)).toEqual(Object.fromEntries(registry));
  });

  it('every exported error kind carries a registered code and its status', () => {
    for (const value of Object.values(errors)) {
      if (typeof value !== 'function' || !(value.prototype instanceof TfcError)) continue;
      const Kind = value as unknown as new (m: string) => TfcError;
      const e = new Kind('x');
      expect(isErrorCode(e.code)).toBe(true);
      expect(e.status).toBe(ERROR_REGISTRY[e.code].status);
    }
  });

  it('rejects codes that are not registered', () => {
    expect(isErrorCode('HTTP_ERROR')).toBe(false);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode('POOL_EXHAUSTED')).toBe(true);
  });
});
