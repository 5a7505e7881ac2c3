import { describe, expect, it } from 'vitest';
import { firecrackerNetworkInterface } from './network-interface.js';

describe('firecrackerNetworkInterface', () => {
  it('is eth0 on the namespace TAP with the guest MAC', () => {
    expect(firecrackerNetworkInterface({ tapName: 'tap0', guestMac: '06:00:ac:10:00:02' })).toEqual({
      iface_id: 'eth0',
      host_dev_name: 'tap0',
      guest_mac: '06:00:ac:10:00:02',
    });
  });
});
