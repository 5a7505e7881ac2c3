import { describe, expect, it } from 'vitest';
import { resolveEgressPolicy } from './egress-policy.js';
import { renderHostBase, renderVmChain, renderVmChainRemoval, renderVmNamespace } from './nft-rules.js';

const lines = (s: string) => s.trim().split('\n');

describe('host base table', () => {
  const base = renderHostBase({ rangeCidr: '10.200.0.0/16', exposedPorts: [7000, 7001], uplinkInterface: 'eth0', masquerade: true });

  it('creates idempotently (add + flush) and never flushes per-VM chains', () => {
    expect(base).toMatch(/^add table inet tfc\n/);
    expect(base).toContain('add map inet tfc vm_egress { type ifname : verdict ; }');
    expect(lines(base).filter((l) => l.startsWith('flush'))).toEqual([
      'flush chain inet tfc forward',
      'flush chain inet tfc input',
      'flush chain inet tfc postrouting',
    ]);
  });

  it('drops VM to VM before anything can accept it, then dispatches per VM', () => {
    const fwd = lines(base).filter((l) => l.startsWith('add rule inet tfc forward'));
    expect(fwd[0]).toContain('iifname "tfcv*" oifname "tfcv*" counter drop');
    const established = fwd.findIndex((l) => l.includes('ct state established,related accept'));
    const vmap = fwd.findIndex((l) => l.includes('iifname vmap @vm_egress'));
    expect(established).toBeGreaterThan(0);
    expect(vmap).toBeGreaterThan(established);
    expect(fwd.at(-1)).toContain('oifname "tfcv*" counter drop');
  });

  it('lets VMs reach only the exposed host ports and masquerades out of the uplink', () => {
    expect(base).toContain('add rule inet tfc input meta l4proto { tcp, udp } th dport { 7000, 7001 } accept');
    expect(
      lines(base)
        .filter((l) => l.startsWith('add rule inet tfc input'))
        .at(-1),
    ).toContain('counter drop');
    expect(base).toContain('add rule inet tfc postrouting oifname "eth0" ip saddr 10.200.0.0/16 masquerade');
  });

  it('omits the exposed-port and masquerade rules when there are none', () => {
    const bare = renderHostBase({ rangeCidr: '10.200.0.0/16', exposedPorts: [], uplinkInterface: null, masquerade: true });
    expect(bare).not.toContain('th dport');
    expect(bare).not.toContain('masquerade');
    expect(renderHostBase({ rangeCidr: '10.200.0.0/16', exposedPorts: [80], uplinkInterface: 'eth0', masquerade: false })).not.toContain('masquerade');
    expect(renderHostBase({ rangeCidr: '10.200.0.0/16', exposedPorts: [80], uplinkInterface: null, masquerade: false })).toContain('th dport 80 accept');
  });

  it('refuses an interface name that could inject nft syntax', () => {
    expect(() => renderHostBase({ rangeCidr: '10.200.0.0/16', exposedPorts: [], uplinkInterface: 'x" accept', masquerade: true })).toThrow(
      /unsafe interface name/,
    );
  });
});

describe('per-VM egress chain', () => {
  it('orders anti-spoofing, allow rules, deny rules, then accept, and registers the map element', () => {
    const policy = resolveEgressPolicy({ egressAllow: ['10.1.2.0/24:443', '192.168.5.5'], egressDeny: ['10.0.0.0/8', '0.0.0.0/0:25'] });
    const out = lines(renderVmChain({ chain: 'vm_abc', hostVeth: 'tfcvabc', hostAddress: '10.200.0.2', policy }));
    expect(out).toEqual([
      'add chain inet tfc vm_abc',
      'flush chain inet tfc vm_abc',
      'add rule inet tfc vm_abc meta nfproto ipv6 counter drop comment "VMs are IPv4 only"',
      'add rule inet tfc vm_abc ip saddr != 10.200.0.2 counter drop comment "spoofed source"',
      'add rule inet tfc vm_abc ip daddr 10.1.2.0/24 meta l4proto { tcp, udp } th dport 443 accept',
      'add rule inet tfc vm_abc ip daddr 192.168.5.5/32 accept',
      'add rule inet tfc vm_abc ip daddr 10.0.0.0/8 counter drop',
      'add rule inet tfc vm_abc ip daddr 0.0.0.0/0 meta l4proto { tcp, udp } th dport 25 counter drop',
      'add rule inet tfc vm_abc accept',
      'add element inet tfc vm_egress { "tfcvabc" : jump vm_abc }',
    ]);
  });

  it('removes idempotently: re-adds before deleting so a missing object is no error', () => {
    expect(lines(renderVmChainRemoval({ chain: 'vm_abc', hostVeth: 'tfcvabc' }))).toEqual([
      'add chain inet tfc vm_abc',
      'add element inet tfc vm_egress { "tfcvabc" : jump vm_abc }',
      'delete element inet tfc vm_egress { "tfcvabc" }',
      'flush chain inet tfc vm_abc',
      'delete chain inet tfc vm_abc',
    ]);
  });
});

describe('VM namespace table', () => {
  const input = { tapName: 'tap0', nsVeth: 'veth0', guestIp: '172.16.0.2', gatewayIp: '172.16.0.1', hostAddress: '10.200.0.6', hostVethIp: '10.200.0.5' };

  it('maps the unique address to the guest both ways and publishes exposed ports at the gateway', () => {
    const out = renderVmNamespace({ ...input, exposedPorts: [7000] });
    expect(out).toContain('add rule ip tfcvm prerouting iifname "veth0" ip daddr 10.200.0.6 dnat to 172.16.0.2');
    expect(out).toContain('add rule ip tfcvm postrouting oifname "veth0" ip saddr 172.16.0.2 snat to 10.200.0.6');
    expect(out).toContain('add rule ip tfcvm prerouting iifname "tap0" ip daddr 172.16.0.1 meta l4proto { tcp, udp } th dport 7000 dnat to 10.200.0.5');
    expect(out).toContain('add rule ip tfcvm input iifname "tap0" counter drop');
  });

  it('has no gateway DNAT without exposed ports', () => {
    expect(renderVmNamespace({ ...input, exposedPorts: [] })).not.toContain('dnat to 10.200.0.5');
  });
});
