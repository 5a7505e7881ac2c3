import { describe, expect, it } from 'vitest';
import { qemuNetworkArgs } from './network-args.js';

describe('qemuNetworkArgs', () => {
  it('plugs a virtio-net device with the guest MAC into the namespace TAP, without QEMU network scripts', () => {
    expect(qemuNetworkArgs({ tapName: 'tap0', guestMac: '06:00:ac:10:00:02' })).toEqual([
      '-netdev',
      'tap,id=net0,ifname=tap0,script=no,downscript=no',
      '-device',
      'virtio-net-device,netdev=net0,mac=06:00:ac:10:00:02',
    ]);
  });
});
