import { loadConfig } from '../../src/config/index.js';
import { QemuDriver } from '../../src/vmm/index.js';
import { findExecutable } from '../../src/process/index.js';
import { defineDriverContract } from './contract.case.js';

const config = loadConfig({ env: {} }).config;
defineDriverContract(
  'qemu',
  () => new QemuDriver({ binary: config.vmm.qemu.binary, accel: config.vmm.qemu.accel }),
  findExecutable(config.vmm.qemu.binary) ? null : `${config.vmm.qemu.binary} not installed (apt-get install qemu-system-x86)`,
);
