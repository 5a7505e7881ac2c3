/**
 * What this host's /dev/kvm looks like to Firecracker. The driver never
 * refuses to run on these facts (Firecracker reports KVM problems itself,
 * and the driver surfaces its message); they only explain, in probe() and
 * `tfc doctor`, what to expect and how to fix it.
 */
import { accessSync, constants, existsSync } from 'node:fs';

export interface KvmFacts {
  /** /dev/kvm exists. */
  devicePresent: boolean;
  /** /dev/kvm is readable and writable by this process (Firecracker opens it O_RDWR). */
  deviceUsable: boolean;
  /** The kvm_pvm module is loaded: nested "PVM" KVM, on which unmodified guests die with emulation failures. */
  pvmLoaded: boolean;
}

/** Reads the facts; never throws. `root` is for tests (a fake /). */
export function gatherKvmFacts(root = '/'): KvmFacts {
  const dev = `${root.replace(/\/$/, '')}/dev/kvm`;
  let deviceUsable = false;
  try {
    accessSync(dev, constants.R_OK | constants.W_OK);
    deviceUsable = true;
  } catch {
    deviceUsable = false;
  }
  return { devicePresent: existsSync(dev), deviceUsable, pvmLoaded: existsSync(`${root.replace(/\/$/, '')}/sys/module/kvm_pvm`) };
}

export interface KvmVerdict {
  usable: boolean;
  /** One sentence: what Firecracker will meet on this host. */
  reason: string;
  /** How to fix it; absent when usable. */
  fix?: string;
}

/** Judges the facts. Pure. */
export function judgeKvm(facts: KvmFacts): KvmVerdict {
  if (!facts.devicePresent) {
    return {
      usable: false,
      reason: '/dev/kvm is missing: Firecracker will fail to start VMs and say why',
      fix: 'enable hardware virtualisation (VT-x/AMD-V, or nested virtualisation on a cloud VM) and load kvm_intel or kvm_amd; or use the qemu driver',
    };
  }
  if (!facts.deviceUsable) {
    return {
      usable: false,
      reason: '/dev/kvm is not readable and writable by this user: Firecracker will fail to open it',
      fix: 'run as root, or add the user to the group owning /dev/kvm (usually kvm), or grant access with `setfacl -m u:USER:rw /dev/kvm`',
    };
  }
  if (facts.pvmLoaded) {
    return {
      usable: false,
      reason: '/dev/kvm is nested PVM (kvm_pvm module): unmodified Linux guests die with "KVM internal error ... emulation failure"',
      fix: 'use a host with hardware KVM (bare metal or nested virtualisation) for Firecracker; the qemu driver runs here under TCG',
    };
  }
  return { usable: true, reason: '/dev/kvm is present and accessible' };
}
