import { chmodSync, lstatSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isSealed, sealReadOnly } from './file-modes.js';

describe('sealReadOnly', () => {
  const dirs: string[] = [];
  const scratch = () => {
    const d = mkdtempSync(join(tmpdir(), 'tfc-seal-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('makes a snapshot file read-only (root-owned when run as root)', () => {
    const file = join(scratch(), 'memory');
    writeFileSync(file, 'x', { mode: 0o666 });
    chmodSync(file, 0o666);
    sealReadOnly([file, join(file, '..', 'missing')]);
    expect(statSync(file).mode & 0o777).toBe(0o444);
    if (process.getuid?.() === 0) expect(isSealed(file)).toBe(true);
  });

  it('never follows a symlink a VM uid could have put in place of a snapshot file', () => {
    const dir = scratch();
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'secret', { mode: 0o600 });
    chmodSync(victim, 0o600);
    const link = join(dir, 'snapshot-out.mem');
    symlinkSync(victim, link);
    sealReadOnly([link]);
    expect(statSync(victim).mode & 0o777).toBe(0o600);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
  });
});
