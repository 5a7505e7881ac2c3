/**
 * VMM drivers behind one interface (driver.ts), the cleanup stack every
 * step registers its undo on, and console capture. Driver folders:
 * qemu/ (microvm; KVM or TCG). Drivers know nothing of the store or HTTP.
 */
import type { Config } from '../config/index.js';
import type { DriverName, VmmDriver } from './driver.js';
import { QemuDriver } from './qemu/driver.js';

export type { AccelName, DriverInfo, DriverName, VmLaunchSpec, VmmDriver, VmmInstance } from './driver.js';
export { CleanupStack } from './cleanup.js';
export { QemuDriver } from './qemu/driver.js';

/**
 * The drivers this build can run. Firecracker is not part of it yet: asking
 * for it fails with INVALID_ARGUMENT listing what is available.
 */
export function createDrivers(config: Config): Partial<Record<DriverName, VmmDriver>> {
  return {
    qemu: new QemuDriver({ binary: config.vmm.qemu.binary, accel: config.vmm.qemu.accel }),
  };
}
