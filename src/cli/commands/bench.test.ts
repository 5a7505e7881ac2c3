import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../testing/run-cli.js';
import { parseLevels, parseSuites } from './bench.js';

// `tfc bench` refuses bad arguments before measuring anything (the real
// run is test/bench-cli.test.ts).

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tfc-bench-cli-'));
  vi.stubEnv('TFC_DATA_DIR', join(dir, 'data'));
  vi.stubEnv('TFC_CONFIG', '');
});
afterEach(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

describe('tfc bench arguments', () => {
  it('suite names and levels are checked, naming the choices', () => {
    expect(parseSuites(['instant', 'density'])).toEqual(['instant', 'density']);
    expect(() => parseSuites(['instnat'])).toThrow(/unknown suite "instnat"; suites: boot-levels, instant, allocation/);
    expect(parseLevels('instant,standard')).toEqual(['instant', 'standard']);
    expect(parseLevels(undefined)).toBeUndefined();
    expect(() => parseLevels('turbo')).toThrow(/--levels: unknown level "turbo"; levels: standard, fast/);
  });

  it('a --compare file that is not a report fails before any VM starts, naming the file', async () => {
    const bad = join(dir, 'old.json');
    writeFileSync(bad, JSON.stringify({ version: 1, suites: 'no' }));
    const started = Date.now();
    const r = await runCli(['bench', 'instant', '--compare', bad, '--out', join(dir, 'out')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`--compare ${bad}: not a bench report`);
    expect(r.stderr).toContain('INVALID_ARGUMENT');
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('an unknown suite or a bad --runs exits non-zero with the reason', async () => {
    const unknown = await runCli(['bench', 'warp']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('unknown suite "warp"');
    const runs = await runCli(['bench', 'instant', '--runs', '0']);
    expect(runs.code).not.toBe(0);
    expect(runs.stderr).toContain('--runs must be a positive integer, got "0"');
  });
});
