import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NetworkManager, type NetworkManagerOptions, type VmNetwork } from '../../src/net/index.js';
import { findExecutable } from '../../src/process/index.js';
import { openDatabase, type Db } from '../../src/store/index.js';
import { LeaseRepository } from '../../src/store/lease-repository.js';
import { CLOSED_PORT, EXPOSED_PORT, GUEST_PORT, HOST_UPLINK_IP, httpGet, ip, nsRun, PRIVATE_IP, Topology, UPSTREAM_IP, UPSTREAM_PORT } from './topology.js';

/**
 * Host side of VM networking, end to end, with the whole host (NAT,
 * nftables, upstream) inside namespaces this file creates (see
 * topology.ts). Guests are namespaces behind a veth standing in for the TAP;
 * the real TAP + VMM path is covered by the VM integration tests.
 */

const why =
  process.getuid?.() !== 0
    ? 'not root'
    : !findExecutable('nft')
      ? 'nft missing (apt-get install nftables)'
      : !findExecutable('busybox')
        ? 'busybox missing'
        : null;
if (why) process.stderr.write(`[test/net] skipping networking tests: ${why}\n`);

describe.skipIf(why !== null)('VM networking (host side, inside test namespaces)', () => {
  const topo = new Topology();
  let db: Db;
  let leases: LeaseRepository;
  const managers: NetworkManager[] = [];
  const created: Array<{ manager: NetworkManager; vmId: string }> = [];

  beforeAll(async () => {
    await topo.create();
  });

  afterAll(async () => {
    await topo.destroy();
    expect(await topo.namespaces()).toEqual([]);
  });

  function manager(extra: Partial<NetworkManagerOptions> = {}): NetworkManager {
    db ??= openDatabase(':memory:');
    leases ??= new LeaseRepository(db);
    const m = new NetworkManager({
      hostNetns: topo.hostNs,
      leases,
      netnsPrefix: topo.vmNetnsPrefix,
      tapStandIn: { peerNetns: (vmId) => topo.guestNs(vmId) },
      ...extra,
    });
    managers.push(m);
    return m;
  }

  /** A networked "VM": guest namespace, network, guest configured and serving "label" on GUEST_PORT. */
  async function vm(m: NetworkManager, vmId: string, policy?: Parameters<NetworkManager['create']>[1]): Promise<VmNetwork> {
    await topo.prepareGuest(vmId);
    const net = await m.create(vmId, policy);
    created.push({ manager: m, vmId });
    await topo.startGuest(vmId, net, vmId);
    return net;
  }

  afterEach(async () => {
    const problems: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        problems.push(`${what}: ${(err as Error).message}`);
      }
    };
    for (const { manager: m, vmId } of created.splice(0)) await attempt(`destroy ${vmId}`, () => m.destroy(vmId));
    for (const m of managers.splice(0)) await attempt('removeHost', () => m.removeHost());
    await topo.removeGuests();
    // Nothing of any VM may remain: namespaces, links in the host namespace, nft tables, leases.
    const left = {
      vmNamespaces: await topo.namespaces(topo.vmNetnsPrefix),
      guestNamespaces: await topo.namespaces(`${topo.prefix}g-`),
      hostLinks: (await topo.hostLinks()).filter((l) => l !== 'lo' && l !== 'up0'),
      nftTables: (await topo.hostTables()) || [],
      leases: leases?.list().map((l) => l.vmId) ?? [],
    };
    if (problems.length > 0 || Object.values(left).some((v) => v.length > 0)) {
      // Sweep so one failing test does not fail the next ones (or leave anything behind), then report.
      for (const l of leases?.list() ?? []) leases.release(l.vmId);
      const sweeper = new NetworkManager({ hostNetns: topo.hostNs, leases, netnsPrefix: topo.vmNetnsPrefix });
      await attempt('sweep', async () => {
        await sweeper.reconcile(new Set());
        await sweeper.removeHost();
      });
      for (const ns of [...left.vmNamespaces, ...left.guestNamespaces]) await attempt(`del ${ns}`, () => ip(['netns', 'del', ns]));
    }
    expect({ problems, ...left }).toEqual({ problems: [], vmNamespaces: [], guestNamespaces: [], hostLinks: [], nftTables: [], leases: [] });
  });

  it('a guest reaches the upstream through NAT, seen as its unique host address', async () => {
    const m = manager({ masquerade: false });
    const net = await vm(m, 'vm-egress');
    expect(net).toMatchObject({ guestIp: '172.16.0.2', gatewayIp: '172.16.0.1', tapName: 'tap0', hostAddress: '10.200.0.2', hostVethIp: '10.200.0.1' });
    const r = await httpGet(topo.guestNs('vm-egress'), UPSTREAM_IP, UPSTREAM_PORT);
    expect(r).toEqual({ ok: true, body: `upstream ${net.hostAddress}` });
  });

  it('masquerades egress out of the uplink found from the default route', async () => {
    const m = manager();
    expect(await m.ensureHost()).toEqual({ uplinkInterface: 'up0', masquerading: true });
    await vm(m, 'vm-masq');
    expect(await httpGet(topo.guestNs('vm-masq'), UPSTREAM_IP, UPSTREAM_PORT)).toEqual({ ok: true, body: `upstream ${HOST_UPLINK_IP}` });
  });

  it('the host reaches a guest service at the VM unique address; nobody else may open connections to it', async () => {
    const m = manager();
    const net = await vm(m, 'vm-svc');
    expect(await httpGet(topo.hostNs, net.hostAddress, GUEST_PORT)).toEqual({ ok: true, body: `vm-svc ${net.hostVethIp}` });
    expect((await httpGet(topo.upstreamNs, net.hostAddress, GUEST_PORT, 2000)).ok).toBe(false);
  });

  it('two VMs cannot reach each other', async () => {
    const m = manager();
    const a = await vm(m, 'vm-a');
    const b = await vm(m, 'vm-b');
    // Positive control: both serve, and both reach the upstream.
    expect((await httpGet(topo.hostNs, b.hostAddress, GUEST_PORT)).ok).toBe(true);
    expect((await httpGet(topo.guestNs('vm-a'), UPSTREAM_IP, UPSTREAM_PORT)).ok).toBe(true);
    expect((await httpGet(topo.guestNs('vm-a'), b.hostAddress, GUEST_PORT, 2000)).ok).toBe(false);
    expect((await httpGet(topo.guestNs('vm-b'), a.hostAddress, GUEST_PORT, 2000)).ok).toBe(false);
  });

  it('a VM reaches exposed host ports (also at its gateway address) and no other host port', async () => {
    const m = manager({ exposedPorts: [EXPOSED_PORT] });
    const net = await vm(m, 'vm-host');
    const g = topo.guestNs('vm-host');
    expect(await httpGet(g, net.gatewayIp, EXPOSED_PORT)).toEqual({ ok: true, body: `host ${net.hostAddress}` });
    expect(await httpGet(g, net.hostVethIp, EXPOSED_PORT)).toEqual({ ok: true, body: `host ${net.hostAddress}` });
    expect((await httpGet(g, HOST_UPLINK_IP, EXPOSED_PORT)).ok).toBe(true);
    for (const addr of [net.gatewayIp, net.hostVethIp, HOST_UPLINK_IP]) {
      expect((await httpGet(g, addr, CLOSED_PORT, 2000)).ok, `${addr}:${CLOSED_PORT}`).toBe(false);
    }
  });

  it('a VM cannot reach a private-range address unless its policy allows it', async () => {
    const m = manager();
    await vm(m, 'vm-deny');
    await vm(m, 'vm-allow', { egressAllow: [`10.99.0.0/24:${UPSTREAM_PORT}`] });
    expect((await httpGet(topo.guestNs('vm-deny'), UPSTREAM_IP, UPSTREAM_PORT)).ok).toBe(true);
    expect((await httpGet(topo.guestNs('vm-deny'), PRIVATE_IP, UPSTREAM_PORT, 2000)).ok).toBe(false);
    expect((await httpGet(topo.guestNs('vm-allow'), PRIVATE_IP, UPSTREAM_PORT)).ok).toBe(true);
  });

  it('an egress deny list blocks a public destination for one VM only', async () => {
    const m = manager();
    await vm(m, 'vm-strict', { egressDeny: ['0.0.0.0/0'] });
    await vm(m, 'vm-open');
    expect((await httpGet(topo.guestNs('vm-strict'), UPSTREAM_IP, UPSTREAM_PORT, 2000)).ok).toBe(false);
    expect((await httpGet(topo.guestNs('vm-open'), UPSTREAM_IP, UPSTREAM_PORT)).ok).toBe(true);
  });

  it('clones share guest address and MAC and get distinct host addresses', async () => {
    const m = manager();
    const nets = [await vm(m, 'clone-1'), await vm(m, 'clone-2'), await vm(m, 'clone-3')];
    expect(new Set(nets.map((n) => `${n.guestIp}/${n.guestMac}/${n.tapName}`))).toEqual(new Set(['172.16.0.2/06:00:ac:10:00:02/tap0']));
    expect(new Set(nets.map((n) => n.hostAddress)).size).toBe(3);
    expect(new Set(nets.map((n) => n.netns)).size).toBe(3);
    for (const n of nets) {
      expect(await httpGet(topo.hostNs, n.hostAddress, GUEST_PORT)).toEqual({ ok: true, body: `${n.vmId} ${n.hostVethIp}` });
      const tap = JSON.parse(await ip(['-n', n.netns, '-j', 'addr', 'show', 'dev', 'tap0'])) as Array<{ addr_info: Array<{ local: string }> }>;
      expect(tap[0].addr_info.map((a) => a.local)).toContain('172.16.0.1');
    }
    expect(m.spawnPrefix(nets[0])).toEqual(['ip', 'netns', 'exec', nets[0].netns]);
  });

  it('fails with NETWORK_EXHAUSTED when the range is full, leaving nothing of the refused VM', async () => {
    const m = manager({ rangeCidr: '10.201.0.0/29' });
    expect(m.capacity).toBe(2);
    await vm(m, 'vm-x1');
    await vm(m, 'vm-x2');
    await topo.prepareGuest('vm-x3');
    await expect(m.create('vm-x3')).rejects.toMatchObject({
      code: 'NETWORK_EXHAUSTED',
      status: 503,
      message: expect.stringContaining('network.range 10.201.0.0/29'),
    });
    expect(
      leases
        .list()
        .map((l) => l.vmId)
        .sort(),
    ).toEqual(['vm-x1', 'vm-x2']);
    expect(await topo.namespaces(topo.vmNetnsPrefix)).toHaveLength(2);
    // Destroying one frees its address for the next VM.
    await m.destroy('vm-x1');
    created.splice(
      created.findIndex((c) => c.vmId === 'vm-x1'),
      1,
    );
    const x3 = await m.create('vm-x3');
    created.push({ manager: m, vmId: 'vm-x3' });
    expect(x3.hostAddress).toBe('10.201.0.2');
  });

  it('undoes everything and releases the lease when a step fails', async () => {
    const m = manager({ tapStandIn: { peerNetns: () => `${topo.prefix}missing` } });
    await expect(m.create('vm-broken')).rejects.toMatchObject({ code: 'NETWORK_SETUP_FAILED', details: { vm_id: 'vm-broken', step: 'tap' } });
    expect(leases.list()).toEqual([]);
    expect(await topo.namespaces(topo.vmNetnsPrefix)).toEqual([]);
  });

  it('destroy is idempotent and ensureHost does not duplicate rules', async () => {
    const m = manager();
    await m.ensureHost();
    const before = (await nsRun(topo.hostNs, 'nft', ['list', 'table', 'inet', 'tfc'])).stdout.toString();
    const fresh = manager();
    await fresh.ensureHost();
    expect((await nsRun(topo.hostNs, 'nft', ['list', 'table', 'inet', 'tfc'])).stdout.toString()).toBe(before);
    await vm(m, 'vm-twice');
    await m.destroy('vm-twice');
    await m.destroy('vm-twice');
    await m.destroy('vm-never-existed');
    created.splice(0);
  });

  it('creates a real TAP (owned by root, gateway address, up) when no stand-in is configured', async () => {
    const m = manager({ tapStandIn: undefined });
    const net = await m.create('vm-tap');
    created.push({ manager: m, vmId: 'vm-tap' });
    const [link] = JSON.parse(await ip(['-n', net.netns, '-d', '-j', 'addr', 'show', 'dev', 'tap0'])) as Array<{
      flags: string[];
      linkinfo: { info_kind: string; info_data: { type: string; user?: string; persist?: boolean } };
      addr_info: Array<{ local: string; prefixlen: number }>;
    }>;
    expect(link.linkinfo.info_kind).toBe('tun');
    expect(link.linkinfo.info_data).toMatchObject({ type: 'tap', user: 'root', persist: true });
    expect(link.flags).toContain('UP'); // administratively up; no carrier until a VMM opens it
    expect(link.addr_info).toContainEqual(expect.objectContaining({ local: '172.16.0.1', prefixlen: 30 }));
  });

  it('limits bandwidth with tbf on both directions when asked', async () => {
    const m = manager();
    const net = await vm(m, 'vm-slow', { bandwidthMbit: 5 });
    for (const dev of ['tap0', 'veth0']) {
      const q = (await nsRun(net.netns, 'tc', ['qdisc', 'show', 'dev', dev])).stdout.toString();
      expect(q).toMatch(/tbf .*rate 5Mbit/);
    }
    expect((await httpGet(topo.guestNs('vm-slow'), UPSTREAM_IP, UPSTREAM_PORT)).ok).toBe(true);
  });

  it('reconcile removes networks of VMs that are gone and orphans nobody leased, and keeps live ones', async () => {
    const m = manager();
    const live = await vm(m, 'vm-live');
    await vm(m, 'vm-dead');
    // Crash leftovers without a lease: a VM namespace, a host veth, an egress chain.
    const orphanNs = `${topo.vmNetnsPrefix}orphan`;
    await ip(['netns', 'add', orphanNs]);
    await ip(['-n', topo.hostNs, 'link', 'add', 'tfcvorphan0001', 'type', 'veth', 'peer', 'name', 'orphanpeer']);
    await nsRun(topo.hostNs, 'nft', ['add', 'chain', 'inet', 'tfc', 'vm_orphan0001']);

    // A restarted daemon: a new manager over the same store.
    const restarted = manager();
    const report = await restarted.reconcile(new Set(['vm-live']));
    expect(report).toEqual({ leases: ['vm-dead'], namespaces: [orphanNs], veths: ['tfcvorphan0001'], chains: ['vm_orphan0001'] });
    created.splice(
      created.findIndex((c) => c.vmId === 'vm-dead'),
      1,
    );
    expect(leases.list().map((l) => l.vmId)).toEqual(['vm-live']);
    expect(await httpGet(topo.hostNs, live.hostAddress, GUEST_PORT)).toEqual({ ok: true, body: `vm-live ${live.hostVethIp}` });
    expect(await restarted.reconcile(new Set(['vm-live']))).toEqual({ leases: [], namespaces: [], veths: [], chains: [] });
  });
});
