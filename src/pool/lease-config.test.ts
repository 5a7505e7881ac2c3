import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';

// The lease keys of a pool as a user writes them in tfc.toml.
describe('pools.NAME.lease_ms / max_lease_ms', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const load = (toml: string) => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-lease-cfg-'));
    writeFileSync(join(dir, 'tfc.toml'), toml);
    return loadConfig({ configPath: join(dir, 'tfc.toml'), env: { TFC_DATA_DIR: join(dir, 'data') }, cwd: dir }).config;
  };

  it('defaults to a 10 minute lease and a 24 hour maximum', () => {
    expect(load('').pools.default).toMatchObject({ leaseMs: 600_000, maxLeaseMs: 86_400_000 });
  });

  it('a default lease never exceeds an explicit lower maximum', () => {
    expect(load('[pools.default]\nmax_lease_ms = 60000\n').pools.default).toMatchObject({ leaseMs: 60_000, maxLeaseMs: 60_000 });
  });

  it('refuses a lease above the maximum, and out-of-range values, naming the key and the rule', () => {
    expect(() => load('[pools.default]\nlease_ms = 120000\nmax_lease_ms = 60000\n')).toThrow(
      /pools\.default\.lease_ms = 120000: must not exceed max_lease_ms \(60000\)/,
    );
    expect(() => load('[pools.default]\nlease_ms = 10\n')).toThrow(/pools\.default\.lease_ms = 10: must be an integer from 1000 to 604800000/);
  });
});
