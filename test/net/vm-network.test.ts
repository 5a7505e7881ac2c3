import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUEST_LINK } from '../../src/net/index.js';
import { SnapshotManager } from '../../src/snapshot/index.js';
import { LeaseRepository } from '../../src/store/lease-repository.js';
import type { Vm, VmProfile, VmService } from '../../src/vm/index.js';
import { assertNothingLeft, testDataDir } from '../helpers.js';
import { EXPOSED_PORT, CLOSED_PORT, httpGet, PRIVATE_IP, Topology, UPSTREAM_IP, UPSTREAM_PORT } from './topology.js';
import { openNetworkedService, type NetworkedService } from './networked-service.js';

const GUEST_LINK_IP = GUEST_LINK.guestIp;

const isRoot = process.getuid?.() === 0;

// Real VMs (QEMU, real TAP devices) in namespaces this test creates. The
// "host" side is itself a namespace with no route to the real network.
describe.skipIf(!isRoot)('networked VMs (real QEMU, TAP, namespaces, nftables)', () => {
  const topo = new Topology();
  let net: NetworkedService | undefined;
  let service: VmService;
  let snapshots: SnapshotManager;
  let profile: VmProfile;
  const vms: Vm[] = [];

  const guestGet = async (vm: Vm, url: string) => {
    const r = await vm.exec({ argv: ['wget', '-q', '-O', '-', url], timeoutMs: 3000 });
    return { ok: r.exitCode === 0, body: r.stdout.toString().trim() };
  };
  const serveInGuest = async (vm: Vm, text: string) => {
    await vm.writeFile('/www/index.html', `${text}\n`, { mkdirs: true });
    const r = await vm.exec({ argv: ['httpd', '-p', '9000', '-h', '/www'] }); // daemonizes
    expect(r.exitCode).toBe(0);
  };

  beforeAll(async () => {
    net = await openNetworkedService(topo, testDataDir());
    const { config, layout } = net;
    service = net.service;
    snapshots = new SnapshotManager(layout, service);
    profile = { ...config.profiles.minimal, name: 'nettest', network: { ...config.profiles.minimal.network, enabled: true } };
  });

  afterAll(async () => {
    await service?.stopAll('test finished');
    snapshots
      ?.list()
      .filter((s) => s.manifest.profile === 'nettest')
      .forEach((s) => snapshots.remove(s.manifest.key));
    await (net ? net.close() : topo.destroy());
    expect(await topo.namespaces()).toEqual([]);
    await assertNothingLeft(testDataDir());
  });

  it('a cold-booted VM gets the guest address, reaches upstream through NAT, and nothing private', async () => {
    const vm = await service.create({ profile });
    vms.push(vm);
    expect(vm.bootPhases.map((p) => p.name)).toContain('network');
    const addr = await vm.exec({ argv: ['ip', '-4', '-o', 'addr', 'show', 'eth0'] });
    expect(addr.stdout.toString()).toContain(`${GUEST_LINK_IP}/30`);
    const up = await guestGet(vm, `http://${UPSTREAM_IP}:${UPSTREAM_PORT}/`);
    expect(up.ok).toBe(true);
    expect(up.body).toMatch(/^upstream /);
    expect((await guestGet(vm, `http://${PRIVATE_IP}:${UPSTREAM_PORT}/`)).ok).toBe(false);
  });

  it('the VM reaches exposed host ports only', async () => {
    const vm = vms[0];
    expect((await guestGet(vm, `http://172.16.0.1:${EXPOSED_PORT}/`)).ok).toBe(true);
    expect((await guestGet(vm, `http://172.16.0.1:${CLOSED_PORT}/`)).ok).toBe(false);
  });

  it('the host reaches a guest service at the VM unique address; VMs cannot reach each other', async () => {
    const [a] = vms;
    const b = await service.create({ profile });
    vms.push(b);
    await serveInGuest(a, 'guest-a');
    await serveInGuest(b, 'guest-b');
    expect(a.network!.hostAddress).not.toBe(b.network!.hostAddress);
    expect((await httpGet(topo.hostNs, a.network!.hostAddress, 9000)).body).toBe('guest-a');
    expect((await httpGet(topo.hostNs, b.network!.hostAddress, 9000)).body).toBe('guest-b');
    expect((await guestGet(a, `http://${b.network!.hostAddress}:9000/`)).ok).toBe(false);
    for (const vm of vms.splice(0)) await service.destroy(vm);
  });

  it('three clones of one snapshot: identical guest addressing, distinct host addresses, all reachable', async () => {
    const clones = [];
    for (let i = 0; i < 3; i++) clones.push(await snapshots.clone(profile));
    const hostAddresses = new Set(clones.map((c) => c.network!.hostAddress));
    expect(hostAddresses.size).toBe(3);
    for (const [i, c] of clones.entries()) {
      expect(c.createdBy).toBe('restore');
      expect((await c.exec({ argv: ['ip', '-4', '-o', 'addr', 'show', 'eth0'] })).stdout.toString()).toContain(`${GUEST_LINK_IP}/30`);
      await serveInGuest(c, `clone-${i}`);
    }
    for (const [i, c] of clones.entries()) {
      expect((await httpGet(topo.hostNs, c.network!.hostAddress, 9000)).body).toBe(`clone-${i}`);
      expect((await guestGet(c, `http://${UPSTREAM_IP}:${UPSTREAM_PORT}/`)).ok).toBe(true);
    }
    // The agent re-addresses the guest when asked (here: the same link, rebuilt from scratch).
    await clones[0].configureGuestNetwork({ address: GUEST_LINK_IP, prefix: 30, gateway: '172.16.0.1' });
    expect((await guestGet(clones[0], `http://${UPSTREAM_IP}:${UPSTREAM_PORT}/`)).ok).toBe(true);
    await expect(clones[0].configureGuestNetwork({ address: '999.1.1.1', prefix: 30, gateway: '172.16.0.1' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    for (const c of clones) await service.destroy(c);
    expect(new LeaseRepository(net!.db).list()).toEqual([]);
    expect(await topo.namespaces(topo.vmNetnsPrefix)).toEqual([]);
  });
});
