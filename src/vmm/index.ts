/**
 * VMM drivers behind one interface (driver.ts) and console capture (the
 * cleanup stack drivers register undos on lives in steps/). Driver folders:
 * qemu/ (microvm; KVM or TCG; QMP; copy-on-write snapshots) and
 * firecracker/ (API client generated from the official spec, launcher,
 * jailer, hybrid vsock). Drivers know nothing of the store or HTTP, and
 * must not import net/ (net must not import vmm/ either; a test checks).
 */
import type { Config } from '../config/index.js';
import type { DriverName, VmmDriver } from './driver.js';
import { QemuDriver } from './qemu/driver.js';
import { FirecrackerDriver, firecrackerDriverOptions } from './firecracker/driver.js';
import { vmmPrivilegeFrom } from '../security/index.js';
import { vmmCacheDir, vmmExecSettingsFrom } from '../launcher/index.js';

export type { AccelName, DriverInfo, DriverName, LiveSnapshotPaths, VmLaunchSpec, VmmDriver, VmmInstance } from './driver.js';
export { QemuDriver } from './qemu/driver.js';
export { FirecrackerDriver } from './firecracker/driver.js';

/**
 * The drivers this build can run: QEMU and Firecracker. Both are always
 * registered; a missing binary shows up when the driver is used (probe()
 * throws VMM_BINARY_NOT_FOUND with the install hint), not here.
 */
export function createDrivers(config: Config): Partial<Record<DriverName, VmmDriver>> {
  // One lease set for both drivers: a uid is never held by two VMs of a data dir.
  const privilege = vmmPrivilegeFrom(config);
  return {
    qemu: new QemuDriver({
      binary: config.vmm.qemu.binary,
      accel: config.vmm.qemu.accel,
      privilege,
      tuning: { tcgTbSizeMib: config.vmm.qemu.tcgTbSizeMib, memMerge: config.vmm.qemu.memMerge },
      // vmm.nice, vmm.qemu.thp: through the tfc-vmm-exec launcher, built in the data dir.
      exec: vmmExecSettingsFrom(config).qemu,
      cacheDir: vmmCacheDir(config.dataDir),
    }),
    firecracker: new FirecrackerDriver({ ...firecrackerDriverOptions(config), privilege }),
  };
}
