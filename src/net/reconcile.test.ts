import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunResult } from '../process/index.js';
import { openDatabase, type Db } from '../store/database.js';
import { LeaseRepository } from '../store/lease-repository.js';
import { vmObjectNames } from './names.js';
import type { NetExec, Scope } from './net-exec.js';
import { Reconciler } from './reconcile.js';

// After a restart: networks of VMs that are gone are removed, those of live
// VMs (and of VMs another process is building right now) are kept. The host
// is a stand-in that answers `ip -j link show`, `nft -j list table` and
// `ip netns list` like the real tools; the leases are in a real SQLite file.

const result = (stdout: string, code = 0): RunResult => ({ code, signal: null, stdout: Buffer.from(stdout), stderr: Buffer.alloc(0) });

class FakeHost {
  netns = new Set<string>();
  veths = new Set<string>();
  chains = new Set<string>();
  hasTable = true;
  removed: string[] = [];

  add(vmId: string): void {
    const n = vmObjectNames(vmId);
    this.netns.add(n.netns);
    this.veths.add(n.hostVeth);
    this.chains.add(n.chain);
  }

  exec(): NetExec {
    return {
      ip: async (_scope: Scope, args: readonly string[]) => {
        expect(args).toEqual(['-j', 'link', 'show']);
        return result(JSON.stringify([{ ifname: 'lo' }, { ifname: 'eth0' }, {}, ...[...this.veths].map((ifname) => ({ ifname }))]));
      },
      nftQuery: async () =>
        this.hasTable
          ? result(
              JSON.stringify({
                nftables: [
                  { metainfo: {} },
                  { table: { name: 'tfc' } },
                  { chain: { name: 'forward' } },
                  ...[...this.chains].map((name) => ({ chain: { name } })),
                ],
              }),
            )
          : result('', 1),
      listNetns: async () => [...this.netns, 'someone-elses-ns'],
    } as unknown as NetExec;
  }
}

describe('network Reconciler', () => {
  let dir: string;
  let db: Db;
  let leases: LeaseRepository;
  let host: FakeHost;
  let destroyed: string[];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-net-reconcile-'));
    db = openDatabase(join(dir, 'tfc.db'));
    leases = new LeaseRepository(db);
    host = new FakeHost();
    destroyed = [];
  });

  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const lease = (vmId: string, n: number) =>
    leases.allocate(vmId, vmObjectNames(vmId).netns, () => ({ subnet: `10.200.0.${n * 4}/30`, hostAddress: `10.200.0.${n * 4 + 2}` }));

  const reconciler = () =>
    new Reconciler({
      exec: host.exec(),
      hostScope: null,
      netnsPrefix: 'tfc-',
      leases,
      destroy: async (vmId) => {
        // The normal teardown: its objects and its lease go.
        const n = vmObjectNames(vmId);
        host.netns.delete(n.netns);
        host.veths.delete(n.hostVeth);
        host.chains.delete(n.chain);
        leases.release(vmId);
        destroyed.push(vmId);
      },
      removeChain: async ({ chain, hostVeth }) => {
        host.chains.delete(chain);
        host.removed.push(`chain ${chain} (${hostVeth})`);
      },
      deleteLink: async (_scope, name) => {
        host.veths.delete(name);
        host.removed.push(`veth ${name}`);
      },
      deleteNetns: async (name) => {
        host.netns.delete(name);
        host.removed.push(`netns ${name}`);
      },
    });

  it('destroys the networks of leased VMs that are gone and keeps those of live VMs', async () => {
    host.add('vm-live');
    lease('vm-live', 1);
    host.add('vm-dead');
    lease('vm-dead', 2);
    const report = await reconciler().run(new Set(['vm-live']));
    expect(report.leases).toEqual(['vm-dead']);
    expect(destroyed).toEqual(['vm-dead']);
    expect(leases.list().map((l) => l.vmId)).toEqual(['vm-live']);
    const live = vmObjectNames('vm-live');
    expect([...host.netns]).toEqual([live.netns]);
    expect([...host.veths]).toEqual([live.hostVeth]);
    expect([...host.chains]).toEqual([live.chain]);
    expect(report).toMatchObject({ namespaces: [], veths: [], chains: [] });
  });

  it('sweeps objects without a lease or a live VM, pairing each chain with its veth; leaves foreign namespaces', async () => {
    host.add('vm-orphan');
    const orphan = vmObjectNames('vm-orphan');
    const report = await reconciler().run(new Set());
    expect(report).toEqual({ leases: [], namespaces: [orphan.netns], veths: [orphan.hostVeth], chains: [orphan.chain] });
    expect(host.removed).toEqual([`chain ${orphan.chain} (${orphan.hostVeth})`, `veth ${orphan.hostVeth}`, `netns ${orphan.netns}`]);
    expect(host.netns).toEqual(new Set());
    // `someone-elses-ns` does not carry the prefix: untouched (listed again, never deleted).
    expect(host.removed.join()).not.toContain('someone-elses-ns');
  });

  it('asks again who is live before each sweep: a VM created meanwhile is not an orphan', async () => {
    host.add('vm-new');
    let calls = 0;
    const live = () => (++calls === 1 ? new Set<string>() : new Set(['vm-new']));
    const report = await reconciler().run(live);
    expect(calls).toBeGreaterThan(1);
    expect(report).toEqual({ leases: [], namespaces: [], veths: [], chains: [] });
  });

  it('a VM whose lease appears after the lease pass (its network is being built) is kept', async () => {
    host.add('vm-building');
    let calls = 0;
    const live = () => {
      // Another process takes the lease first, then builds the objects; its VM is not live yet.
      if (++calls === 2) lease('vm-building', 3);
      return new Set<string>();
    };
    const report = await reconciler().run(live);
    expect(report).toEqual({ leases: [], namespaces: [], veths: [], chains: [] });
    expect(host.netns.size).toBe(1);
  });

  it('no host table yet means no chains to sweep', async () => {
    host.hasTable = false;
    host.add('vm-orphan');
    const report = await reconciler().run(new Set());
    expect(report.chains).toEqual([]);
    expect(report.veths).toHaveLength(1);
  });
});
