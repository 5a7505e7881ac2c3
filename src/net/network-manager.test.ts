import { describe, expect, it } from 'vitest';
import { openDatabase } from '../store/database.js';
import { LeaseRepository } from '../store/lease-repository.js';
import { NetworkManager } from './network-manager.js';

// Construction and pure parts only; everything touching the system is in test/net.
describe('NetworkManager options', () => {
  const leases = new LeaseRepository(openDatabase(':memory:'));

  it('defaults to 10.200.0.0/16 in /30 slices and runs VMMs through ip netns exec', () => {
    const m = new NetworkManager({ leases });
    expect(m.capacity).toBe(16384);
    expect(m.spawnPrefix({ netns: 'tfc-0123456789' })).toEqual(['ip', 'netns', 'exec', 'tfc-0123456789']);
  });

  it('refuses bad configuration before touching the system, naming the key', () => {
    expect(() => new NetworkManager({ leases, rangeCidr: '10.200.0.0/33' })).toThrow(/network\.range/);
    expect(() => new NetworkManager({ leases, prefixPerVm: 31 })).toThrow(/network\.prefix_per_vm/);
    expect(() => new NetworkManager({ leases, exposedPorts: [0] })).toThrow(/network\.exposed_ports: 0/);
    expect(() => new NetworkManager({ leases, uplinkInterface: 'much-too-long-name' })).toThrow(/not a valid interface name/);
    expect(() => new NetworkManager({ leases, netnsPrefix: '../etc' })).toThrow(/netns prefix/);
  });

  it('rejects an invalid egress policy with INVALID_ARGUMENT before creating anything', async () => {
    const m = new NetworkManager({ leases });
    await expect(m.create('vm-1', { egressAllow: ['not-a-cidr'] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(leases.list()).toEqual([]);
  });
});
