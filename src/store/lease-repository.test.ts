import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from './database.js';
import { LeaseRepository, type LeaseChoice } from './lease-repository.js';

// A toy allocator: the lowest free of four subnets.
const SUBNETS = ['10.9.0.0/30', '10.9.0.4/30', '10.9.0.8/30', '10.9.0.12/30'];
function lowestFree(taken: ReadonlySet<string>): LeaseChoice | null {
  const subnet = SUBNETS.find((s) => !taken.has(s));
  return subnet ? { subnet, hostAddress: subnet.replace(/\d+\/30$/, (m) => String(Number(m.split('/')[0]) + 2)) } : null;
}

describe('LeaseRepository on a real SQLite file', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function open() {
    dir = mkdtempSync(join(tmpdir(), 'tfc-lease-'));
    return join(dir, 'tfc.db');
  }

  it('allocates the lowest free subnet, reuses released ones, and survives reopening', () => {
    const path = open();
    let db = openDatabase(path);
    const repo = new LeaseRepository(db);
    expect(repo.allocate('vm-a', 'tfc-a', lowestFree)).toMatchObject({ vmId: 'vm-a', subnet: '10.9.0.0/30', hostAddress: '10.9.0.2', netns: 'tfc-a' });
    expect(repo.allocate('vm-b', 'tfc-b', lowestFree)?.subnet).toBe('10.9.0.4/30');
    expect(repo.release('vm-a')).toBe(true);
    expect(repo.release('vm-a')).toBe(false);
    expect(repo.allocate('vm-c', 'tfc-c', lowestFree)?.subnet).toBe('10.9.0.0/30');
    db.close();

    db = openDatabase(path);
    const again = new LeaseRepository(db);
    expect(
      again
        .list()
        .map((l) => `${l.vmId}=${l.hostAddress}`)
        .sort(),
    ).toEqual(['vm-b=10.9.0.6', 'vm-c=10.9.0.2']);
    expect(again.get('vm-b')?.netns).toBe('tfc-b');
    expect(again.get('nope')).toBeNull();
    db.close();
  });

  it('returns null and writes nothing when the range is exhausted', () => {
    const db = openDatabase(open());
    const repo = new LeaseRepository(db);
    for (const id of ['1', '2', '3', '4']) expect(repo.allocate(`vm-${id}`, `tfc-${id}`, lowestFree)).not.toBeNull();
    expect(repo.allocate('vm-5', 'tfc-5', lowestFree)).toBeNull();
    expect(repo.list()).toHaveLength(4);
    db.close();
  });

  it('refuses a second lease for one VM and a subnet taken twice', () => {
    const db = openDatabase(open());
    const repo = new LeaseRepository(db);
    repo.allocate('vm-a', 'tfc-a', lowestFree);
    expect(() => repo.allocate('vm-a', 'tfc-a', lowestFree)).toThrow(/already holds network lease 10\.9\.0\.2/);
    // A buggy allocator that ignores `taken` cannot create a duplicate: the schema refuses it.
    expect(() => repo.allocate('vm-b', 'tfc-b', () => ({ subnet: '10.9.0.0/30', hostAddress: '10.9.0.2' }))).toThrow(/UNIQUE/);
    expect(repo.list()).toHaveLength(1);
    db.close();
  });

  it('a release the store refused (read-only) is written by the next successful write, freeing the subnet', () => {
    const db = openDatabase(open());
    const repo = new LeaseRepository(db);
    repo.allocate('vm-a', 'tfc-a', lowestFree);
    db.pragma('query_only = ON');
    expect(() => repo.release('vm-a')).toThrow(
      expect.objectContaining({ code: 'STORE_ERROR', message: expect.stringContaining('release the network lease of VM vm-a') }),
    );
    expect(() => repo.allocate('vm-b', 'tfc-b', lowestFree)).toThrow(/read-only/);
    expect(repo.pendingReleases).toEqual(['vm-a']);
    db.pragma('query_only = OFF');
    // The stale lease no longer blocks its subnet.
    expect(repo.allocate('vm-b', 'tfc-b', lowestFree)?.subnet).toBe('10.9.0.0/30');
    expect(repo.pendingReleases).toEqual([]);
    expect(repo.list().map((l) => l.vmId)).toEqual(['vm-b']);
    db.close();
  });
});
