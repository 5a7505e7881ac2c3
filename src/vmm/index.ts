/**
 * VMM drivers behind one interface (driver.ts), the cleanup stack every
 * step registers its undo on, and console capture. Driver folders:
 * qemu/ (microvm; KVM or TCG; QMP; copy-on-write snapshots) and
 * firecracker/ (API client generated from the official spec, launcher,
 * jailer, hybrid vsock). Drivers know nothing of the store or HTTP.
 */
import type { Config } from '../config/index.js';
import type { DriverName, VmmDriver } from './driver.js';
import { QemuDriver } from './qemu/driver.js';
import { FirecrackerDriver, firecrackerDriverOptions } from './firecracker/driver.js';

export type { AccelName, DriverInfo, DriverName, VmLaunchSpec, VmmDriver, VmmInstance } from './driver.js';
export { CleanupStack } from './cleanup.js';
export { QemuDriver } from './qemu/driver.js';
export { FirecrackerDriver } from './firecracker/driver.js';

/**
 * The drivers this build can run: QEMU and Firecracker. Both are always
 * registered; a missing binary shows up when the driver is used (probe()
 * throws VMM_BINARY_NOT_FOUND with the install hint), not here.
 */
export function createDrivers(config: Config): Partial<Record<DriverName, VmmDriver>> {
  return {
    qemu: new QemuDriver({ binary: config.vmm.qemu.binary, accel: config.vmm.qemu.accel }),
    firecracker: new FirecrackerDriver(firecrackerDriverOptions(config)),
  };
}
