import { closeSync, openSync, readSync } from 'node:fs';
import { loadConfig } from '../../src/config/index.js';
import { findExecutable } from '../../src/process/index.js';
import { FirecrackerDriver, firecrackerDriverOptions } from '../../src/vmm/firecracker/driver.js';
import { gatherKvmFacts, judgeKvm } from '../../src/vmm/firecracker/kvm.js';
import { defineDriverContract } from './contract.case.js';

/**
 * The shared driver contract against a real Firecracker: only where
 * FIRECRACKER_BIN names a real Firecracker binary (an ELF executable, not
 * the test fake, which cannot boot a guest kernel) and KVM can run guests
 * (/dev/kvm read-write, not nested PVM). Otherwise skipped, saying why.
 * On a KVM host: FIRECRACKER_BIN=/path/to/firecracker npx vitest run --project integration test/driver-contract
 */
function isElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const magic = Buffer.alloc(4);
    return readSync(fd, magic, 0, 4, 0) === 4 && magic.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    closeSync(fd);
  }
}

function skipReason(binary: string | null): string | null {
  const wanted = process.env.FIRECRACKER_BIN;
  if (!wanted) return 'FIRECRACKER_BIN is not set (set it to a Firecracker >= 1.8 binary on a host with hardware KVM)';
  if (!binary) return `FIRECRACKER_BIN=${wanted} is not an executable file`;
  if (!isElf(binary)) return `FIRECRACKER_BIN=${wanted} is not a Firecracker binary (not an ELF executable; the test fake cannot boot guests)`;
  const kvm = judgeKvm(gatherKvmFacts());
  return kvm.usable ? null : `KVM cannot run Firecracker guests here: ${kvm.reason}`;
}

const config = loadConfig({ env: { ...(process.env.FIRECRACKER_BIN ? { FIRECRACKER_BIN: process.env.FIRECRACKER_BIN } : {}) } }).config;
const binary = process.env.FIRECRACKER_BIN ? findExecutable(process.env.FIRECRACKER_BIN) : null;
defineDriverContract('firecracker', () => new FirecrackerDriver({ ...firecrackerDriverOptions(config), binary: binary! }), skipReason(binary));
