/**
 * The facts a benchmark report is read against: CPU, cores, memory,
 * kernel, the VMM and its accelerator, Node, the date and the commit.
 * Never throws for a fact it cannot read: it says "unknown" (or null).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';
import { resolveProfile, type Config } from '../config/index.js';
import { packageRoot } from '../package-root.js';
import { runCommand } from '../process/index.js';
import { QemuDriver } from '../vmm/index.js';
import { hostMemory } from './memory.js';
import type { Machine } from './report-schema.js';

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** The `model name` of /proc/cpuinfo text, or null. */
export function cpuModelOf(cpuinfo: string | null): string | null {
  return /^model name\s*:\s*(.+)$/m.exec(cpuinfo ?? '')?.[1].trim() ?? null;
}

/** The 1-minute load average, or null without /proc. */
export function loadAverage1(): number | null {
  const v = Number(read('/proc/loadavg')?.split(' ')[0]);
  return Number.isFinite(v) ? v : null;
}

/** The checkout this build runs from: `git rev-parse HEAD` in the package root, or null (no git, not a checkout). */
async function gitCommit(): Promise<string | null> {
  try {
    const root = packageRoot();
    const r = await runCommand('git', ['rev-parse', 'HEAD'], { cwd: root, timeoutMs: 5000, allowFailure: true });
    const out = r.stdout.toString().trim();
    return /^[0-9a-f]{40}$/.test(out) ? out : null;
  } catch {
    return null;
  }
}

/** Collects the machine facts; `probe: false` skips the VMM probe and git (for the load average at the end). */
export async function collectMachine(config: Config, options: { probe?: boolean } = {}): Promise<Machine> {
  const memory = (() => {
    try {
      return hostMemory().totalMib;
    } catch {
      return 0;
    }
  })();
  let driver = 'unknown';
  let qemuVersion: string | null = null;
  let accel = 'unknown';
  let accelReason: string | undefined;
  let commit: string | null = null;
  if (options.probe !== false) {
    try {
      driver = resolveProfile(config).driver;
    } catch {
      // An invalid default profile fails the suites with its own error.
    }
    try {
      const info = await new QemuDriver({ binary: config.vmm.qemu.binary, accel: config.vmm.qemu.accel }).probe();
      qemuVersion = info.version;
      accel = info.accel;
      accelReason = info.accelReason;
    } catch (err) {
      accelReason = `QEMU probe failed: ${(err as Error).message.split('\n')[0]}`;
    }
    commit = await gitCommit();
  }
  return {
    cpuModel: cpuModelOf(read('/proc/cpuinfo')) ?? 'unknown',
    cores: availableParallelism(),
    memoryMib: memory,
    kernel: release(),
    driver,
    qemuVersion,
    accel,
    ...(accelReason ? { accelReason } : {}),
    nodeVersion: process.version,
    date: new Date().toISOString(),
    gitCommit: commit,
    loadAverage: { start: loadAverage1(), end: null },
  };
}
