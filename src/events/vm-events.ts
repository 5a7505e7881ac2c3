/**
 * What the VM service tells the event bus: state transitions, and boots or
 * restores that finished (`vm.ready`) or failed (`vm.failed`). Its methods
 * match the VM service's observer (VmServiceOptions.observer) by shape, so
 * the daemon combines them with the metrics' observer without the VM code
 * importing the bus.
 */
import type { EventBus } from './bus.js';

/** The parts of a ready VM a `vm.ready` event reports (a `Vm` has them all). */
export interface ReadyVm {
  id: string;
  profileName: string;
  driverName: string;
  createdBy: 'boot' | 'restore';
  bootPhases: ReadonlyArray<{ name: string; ms: number }>;
}

export interface VmEventObserver {
  vmState(vmId: string, from: string, to: string, reason?: string): void;
  vmReady(vm: ReadyVm): void;
  vmFailed(driver: string, code: string): void;
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

/** An observer publishing `vm.state`, `vm.ready` and `vm.failed` on `bus`. Never throws. */
export function vmEventObserver(bus: EventBus): VmEventObserver {
  return {
    vmState(vmId, from, to, reason) {
      bus.publish('vm.state', { vm_id: vmId, from, to, ...(reason !== undefined ? { reason } : {}) });
    },
    vmReady(vm) {
      const phases = vm.bootPhases.map((p) => ({ name: p.name, ms: round3(p.ms) }));
      bus.publish('vm.ready', {
        vm_id: vm.id,
        profile: vm.profileName,
        driver: vm.driverName,
        kind: vm.createdBy,
        ms: round3(vm.bootPhases.reduce((total, p) => total + p.ms, 0)),
        phases,
      });
    },
    vmFailed(driver, code) {
      bus.publish('vm.failed', { driver, code });
    },
  };
}
