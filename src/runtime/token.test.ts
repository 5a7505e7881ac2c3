import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateToken, readToken, tokenPath } from './token.js';

// The API token the daemon requires and the CLI sends.

describe('API token', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-token-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is generated once into data_dir/api-token, private to its owner, and the same on the next start', () => {
    const dataDir = join(dir, 'data');
    const first = loadOrCreateToken(dataDir, {});
    expect(first).toMatchObject({ source: 'file', path: tokenPath(dataDir) });
    expect(first.token).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(tokenPath(dataDir)).mode & 0o777).toBe(0o600);
    expect(loadOrCreateToken(dataDir, {}).token).toBe(first.token);
    // The CLI reads the same token.
    expect(readToken(dataDir, {})).toBe(first.token);
  });

  it('tightens a token file someone made readable to others', () => {
    loadOrCreateToken(dir, {});
    chmodSync(tokenPath(dir), 0o644);
    loadOrCreateToken(dir, {});
    expect(statSync(tokenPath(dir)).mode & 0o777).toBe(0o600);
  });

  it('TFC_TOKEN wins and writes no file', () => {
    expect(loadOrCreateToken(dir, { TFC_TOKEN: 'a-long-enough-token' })).toEqual({ token: 'a-long-enough-token', source: 'env', path: null });
    expect(() => readFileSync(tokenPath(dir))).toThrow();
    expect(readToken(dir, { TFC_TOKEN: 'a-long-enough-token' })).toBe('a-long-enough-token');
  });

  it('refuses a short TFC_TOKEN or one with spaces, saying what is needed', () => {
    expect(() => loadOrCreateToken(dir, { TFC_TOKEN: 'short' })).toThrow('TFC_TOKEN must be at least 16 characters without spaces');
    expect(() => loadOrCreateToken(dir, { TFC_TOKEN: 'sixteen chars and spaces' })).toThrow('TFC_TOKEN must be at least 16 characters without spaces');
  });

  it('a client without a token file and without TFC_TOKEN has none', () => {
    expect(readToken(join(dir, 'nothing-here'), {})).toBeNull();
  });
});
