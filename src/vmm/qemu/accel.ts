import { accessSync, constants, existsSync } from 'node:fs';
import { AccelUnavailableError } from '../../errors/index.js';
import type { AccelName } from '../driver.js';

export type AccelSetting = 'auto' | 'kvm' | 'tcg';

/** Host facts the accelerator choice depends on (gathered separately so the decision is testable). */
export interface AccelFacts {
  /** /dev/kvm exists and is readable and writable by this process. */
  kvmDeviceUsable: boolean;
  /** The kvm_pvm module is loaded: nested "PVM" KVM, which cannot run unmodified guests. */
  kvmPvmLoaded: boolean;
}

export interface AccelChoice {
  accel: AccelName;
  reason: string;
}

/** Reads the host facts; never throws. */
export function gatherAccelFacts(): AccelFacts {
  let kvmDeviceUsable = false;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    kvmDeviceUsable = true;
  } catch {
    kvmDeviceUsable = false;
  }
  return { kvmDeviceUsable, kvmPvmLoaded: existsSync('/sys/module/kvm_pvm') };
}

/**
 * Chooses the accelerator. `auto` picks KVM only when /dev/kvm is usable
 * and is not nested PVM (there, unmodified Linux guests die with "KVM
 * internal error ... emulation failure" after a while), else TCG. An
 * explicit `kvm` on a host without /dev/kvm throws AccelUnavailableError;
 * an explicit `kvm` on PVM is honoured (the operator asked for it).
 */
export function chooseAccel(setting: AccelSetting, facts: AccelFacts): AccelChoice {
  if (setting === 'tcg') return { accel: 'tcg', reason: 'vmm.qemu.accel = "tcg" in config' };
  if (setting === 'kvm') {
    if (!facts.kvmDeviceUsable) {
      throw new AccelUnavailableError(
        'vmm.qemu.accel = "kvm" but /dev/kvm is missing or not accessible; load the kvm module, run as root (or join group kvm), or set vmm.qemu.accel = "auto"',
      );
    }
    return { accel: 'kvm', reason: 'vmm.qemu.accel = "kvm" in config' };
  }
  if (!facts.kvmDeviceUsable) return { accel: 'tcg', reason: '/dev/kvm missing or not accessible: software emulation (TCG)' };
  if (facts.kvmPvmLoaded) {
    return { accel: 'tcg', reason: '/dev/kvm is nested PVM (kvm_pvm module), which cannot run unmodified guests: software emulation (TCG)' };
  }
  return { accel: 'kvm', reason: '/dev/kvm is usable' };
}
