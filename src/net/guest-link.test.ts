import { describe, expect, it } from 'vitest';
import { GUEST_LINK, guestKernelNetArg } from './guest-link.js';
import { tbfArgs } from './network-manager.js';

describe('guest link', () => {
  it('derives the MAC from the guest address (06:00 + IPv4 bytes)', () => {
    const hex = GUEST_LINK.guestIp.split('.').map((b) => Number(b).toString(16).padStart(2, '0'));
    expect(GUEST_LINK.guestMac).toBe(['06', '00', ...hex].join(':'));
  });

  it('gives the guest init what it needs (the VMM argv lives in each driver)', () => {
    expect(guestKernelNetArg()).toBe('tfc.net=172.16.0.2/30,172.16.0.1');
  });

  it('sizes the tbf burst for ~10 ms at the rate, at least 32 KiB', () => {
    expect(tbfArgs(1)).toEqual(['tbf', 'rate', '1mbit', 'burst', '32768', 'latency', '50ms']);
    expect(tbfArgs(1000)).toEqual(['tbf', 'rate', '1000mbit', 'burst', '1250000', 'latency', '50ms']);
  });
});
