import { describe, expect, it } from 'vitest';
import { chooseAccel } from './accel.js';

describe('chooseAccel', () => {
  it('auto uses KVM only when usable and not nested PVM', () => {
    expect(chooseAccel('auto', { kvmDeviceUsable: true, kvmPvmLoaded: false }).accel).toBe('kvm');
    expect(chooseAccel('auto', { kvmDeviceUsable: true, kvmPvmLoaded: true })).toMatchObject({ accel: 'tcg', reason: /PVM/ });
    expect(chooseAccel('auto', { kvmDeviceUsable: false, kvmPvmLoaded: false })).toMatchObject({ accel: 'tcg', reason: /missing/ });
  });
  it('honours explicit settings and fails clearly when kvm is impossible', () => {
    expect(chooseAccel('tcg', { kvmDeviceUsable: true, kvmPvmLoaded: false }).accel).toBe('tcg');
    expect(chooseAccel('kvm', { kvmDeviceUsable: true, kvmPvmLoaded: true }).accel).toBe('kvm');
    expect(() => chooseAccel('kvm', { kvmDeviceUsable: false, kvmPvmLoaded: false })).toThrow(/\/dev\/kvm is missing.*vmm\.qemu\.accel = "auto"/);
  });
});
