import { describe, expect, it } from 'vitest';
import { GUEST_LINK_CIDR } from './guest-link.js';
import { cidrContains, cidrsOverlap, formatIpv4, parseCidr, parseIpv4, SubnetAllocator } from './ipam.js';

describe('IPv4 and CIDR parsing', () => {
  it('round-trips addresses, including the top and bottom of the space', () => {
    for (const a of ['0.0.0.0', '10.200.0.1', '255.255.255.255', '198.18.0.1']) expect(formatIpv4(parseIpv4(a)!)).toBe(a);
    for (const bad of ['256.0.0.1', '1.2.3', '1.2.3.4.5', 'a.b.c.d', '', '01.2.3.4x']) expect(parseIpv4(bad)).toBeNull();
  });

  it('accepts network addresses and refuses host bits, bad prefixes and junk', () => {
    expect(parseCidr('10.200.0.0/16')).toEqual({ network: parseIpv4('10.200.0.0'), prefix: 16 });
    expect(parseCidr('0.0.0.0/0')).toEqual({ network: 0, prefix: 0 });
    expect(parseCidr('1.2.3.4')).toEqual({ network: parseIpv4('1.2.3.4'), prefix: 32 });
    for (const bad of ['10.200.0.1/16', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/8/1', '10.0.0.0/x']) expect(parseCidr(bad)).toBeNull();
  });

  it('detects overlap and containment', () => {
    expect(cidrsOverlap(parseCidr('172.16.0.0/12')!, GUEST_LINK_CIDR)).toBe(true);
    expect(cidrsOverlap(parseCidr('10.200.0.0/16')!, GUEST_LINK_CIDR)).toBe(false);
    expect(cidrContains(parseCidr('10.0.0.0/8')!, parseIpv4('10.200.3.4')!)).toBe(true);
    expect(cidrContains(parseCidr('10.0.0.0/8')!, parseIpv4('11.0.0.1')!)).toBe(false);
  });
});

describe('SubnetAllocator', () => {
  it('splits the default range into 16384 /30 slots: host veth end first, VM address second', () => {
    const a = new SubnetAllocator('10.200.0.0/16', 30, GUEST_LINK_CIDR);
    expect(a.capacity).toBe(16384);
    expect(a.slot(0)).toEqual({ subnet: '10.200.0.0/30', hostVethIp: '10.200.0.1', hostAddress: '10.200.0.2' });
    expect(a.slot(1)).toEqual({ subnet: '10.200.0.4/30', hostVethIp: '10.200.0.5', hostAddress: '10.200.0.6' });
    expect(a.slot(16383)).toEqual({ subnet: '10.200.255.252/30', hostVethIp: '10.200.255.253', hostAddress: '10.200.255.254' });
    expect(() => a.slot(16384)).toThrow(RangeError);
  });

  it('hands out the lowest free slot and null when all are taken', () => {
    const a = new SubnetAllocator('10.201.0.0/29', 30, GUEST_LINK_CIDR);
    expect(a.capacity).toBe(2);
    expect(a.firstFree(new Set())?.subnet).toBe('10.201.0.0/30');
    expect(a.firstFree(new Set(['10.201.0.0/30']))?.subnet).toBe('10.201.0.4/30');
    expect(a.firstFree(new Set(['10.201.0.4/30']))?.subnet).toBe('10.201.0.0/30');
    expect(a.firstFree(new Set(['10.201.0.0/30', '10.201.0.4/30']))).toBeNull();
  });

  it('finds the slot of a subnet it hands out, and null for one outside the range or of another size', () => {
    const a = new SubnetAllocator('10.200.0.0/16', 30, GUEST_LINK_CIDR);
    expect(a.slotOf('10.200.0.12/30')).toEqual(a.slot(3));
    expect(a.slotOf(a.slot(16383).subnet)).toEqual(a.slot(16383));
    expect(a.slotOf('10.201.0.0/30')).toBeNull();
    expect(a.slotOf('10.200.0.0/29')).toBeNull();
    expect(a.slotOf('junk')).toBeNull();
  });

  it('supports larger per-VM subnets', () => {
    const a = new SubnetAllocator('10.200.0.0/24', 28, GUEST_LINK_CIDR);
    expect(a.capacity).toBe(16);
    expect(a.slot(2)).toEqual({ subnet: '10.200.0.32/28', hostVethIp: '10.200.0.33', hostAddress: '10.200.0.34' });
  });

  it('refuses bad configuration with the config key and the fix', () => {
    expect(() => new SubnetAllocator('10.200.0.1/16', 30, GUEST_LINK_CIDR)).toThrow(/network\.range "10\.200\.0\.1\/16" is not an IPv4 CIDR/);
    expect(() => new SubnetAllocator('10.200.0.0/16', 31, GUEST_LINK_CIDR)).toThrow(/network\.prefix_per_vm 31 must be an integer from 16/);
    expect(() => new SubnetAllocator('10.200.0.0/24', 16, GUEST_LINK_CIDR)).toThrow(/prefix_per_vm 16/);
    expect(() => new SubnetAllocator('172.16.0.0/16', 30, GUEST_LINK_CIDR)).toThrow(/overlaps the guest link 172\.16\.0\.0\/30/);
  });
});
