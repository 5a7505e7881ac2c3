import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UidLeases } from './uid-leases.js';

const dirs: string[] = [];
function leaseDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tfc-uids-'));
  dirs.push(d);
  return join(d, 'uids');
}
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('uid leases', () => {
  it('never hands one uid to two holders sharing a directory, and frees on release', () => {
    const dir = leaseDir();
    const a = new UidLeases(dir, { start: 3_000_000_000, count: 3 });
    const b = new UidLeases(dir, { start: 3_000_000_000, count: 3 }); // another process on the same data dir
    const got = [a.acquire('vm-1'), b.acquire('vm-2'), a.acquire('vm-3')];
    expect(new Set(got.map((l) => l.uid)).size).toBe(3);
    for (const l of got) {
      expect(l.uid).toBeGreaterThanOrEqual(3_000_000_000);
      expect(l.gid).toBe(l.uid);
    }
    expect(() => b.acquire('vm-4')).toThrow(/all 3 VM uids .* raise security.uid_count/);
    got[1].release();
    got[1].release(); // idempotent
    expect(b.acquire('vm-5').uid).toBe(got[1].uid);
  });

  it('reclaims the lease of a dead owner once no process runs as that uid', () => {
    const dir = leaseDir();
    const leases = new UidLeases(dir, { start: 3_100_000_000, count: 1 });
    leases.acquire('vm-old');
    // Rewrite the lease as if a crashed process (a pid that cannot exist) held it.
    writeFileSync(join(dir, '3100000000'), JSON.stringify({ pid: 2 ** 22 + 1, owner: 'vm-old' }));
    expect(leases.reconcile()).toEqual([3_100_000_000]);
    expect(leases.acquire('vm-new').uid).toBe(3_100_000_000);
    expect(leases.leases()).toEqual([{ uid: 3_100_000_000, pid: process.pid, owner: 'vm-new' }]);
  });
});
