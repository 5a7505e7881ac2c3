import { readFileSync } from 'node:fs';
import { resolveProfile, type Config } from '../config/index.js';
import type { Vm } from '../vm/index.js';
import { openBenchEnv, sum } from './common.js';
import { smapsBreakdown, type KindTotals, type MappingKind } from './smaps.js';

/** Rss and Pss of a process in KiB, from /proc/PID/smaps_rollup. Throws when the process is gone. */
export function rollupKib(pid: number): { rssKib: number; pssKib: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in /proc/${pid}/smaps_rollup`);
    return Number(m[1]);
  };
  return { rssKib: field('Rss'), pssKib: field('Pss') };
}

/**
 * Proportional set size of a process in KiB (shared pages divided among the
 * processes sharing them), from /proc/PID/smaps_rollup. The fair way to add
 * up the memory of clones that share one memory file.
 */
export function pssKib(pid: number): number {
  return rollupKib(pid).pssKib;
}

/** MemTotal and MemAvailable of /proc/meminfo text, in MiB. Throws when either is missing. */
export function parseMeminfo(text: string): { totalMib: number; availableMib: number } {
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in /proc/meminfo`);
    return Math.floor(Number(m[1]) / 1024);
  };
  return { totalMib: field('MemTotal'), availableMib: field('MemAvailable') };
}

export function hostMemory(): { totalMib: number; availableMib: number } {
  return parseMeminfo(readFileSync('/proc/meminfo', 'utf8'));
}

/**
 * How many more VMs of `perVmMib` fit in the host's available memory while
 * keeping a reserve for everyone else on the machine: the larger of 1 GiB
 * and a fifth of the total. Never negative.
 */
export function vmsThatFit(memory: { totalMib: number; availableMib: number }, perVmMib: number): number {
  if (!(perVmMib > 0)) throw new Error(`per-VM memory estimate must be positive, got ${perVmMib}`);
  const reserveMib = Math.max(1024, memory.totalMib / 5);
  return Math.max(0, Math.floor((memory.availableMib - reserveMib) / perVmMib));
}

/** PSS of `clones` idle clones, measured together. */
export interface DensityPoint {
  clones: number;
  totalPssKib: number;
  perClonePssKib: number;
  /** The cold VM's PSS at the same moment (shared library pages shift with the number of QEMUs). */
  coldPssKib: number;
  /**
   * The part of coldPssKib that is the guest kernel and initrd files QEMU's
   * loader keeps mapped: clean page cache, shared with every other process
   * mapping them (other cold VMs on the host), so it moves with them.
   */
  coldImagePssKib: number;
}

export interface SmapsSummary {
  kinds: Record<MappingKind, KindTotals>;
  pageTablesKib: number;
}

export interface DensityResult {
  points: DensityPoint[];
  /** Set when fewer clones than asked for were made, with the reason. */
  limited?: { reached: number; wanted: number; why: string };
  /** Where one idle clone's and the cold VM's memory goes, at the last point. */
  breakdown: { clone: SmapsSummary; cold: SmapsSummary };
  memoryMib: number;
}

/**
 * One cold-booted VM and idle clones of the default profile's golden
 * snapshot, counted up to each of `counts` (ascending); at each count, after
 * `idleMs` of idling, the PSS of every clone and of the cold VM. Each VM runs
 * `true` once first (as a used VM would have). Stops adding clones before
 * the host's available memory runs low (vmsThatFit, re-estimated from the
 * clones' measured RSS) and says so in `limited`. Every VM is stopped at the end.
 */
export async function idleDensity(config: Config, options: { counts: number[]; idleMs?: number; log?: (line: string) => void }): Promise<DensityResult> {
  const counts = [...options.counts].sort((a, b) => a - b);
  const log = options.log ?? (() => undefined);
  const env = await openBenchEnv(config);
  try {
    const profile = resolveProfile(env.config);
    const snapshot = await env.snapshots.ensure(profile);
    const cold = await env.service.create({ profile });
    await cold.exec({ argv: ['true'] });
    const clones: Vm[] = [];
    const points: DensityPoint[] = [];
    let limited: DensityResult['limited'];
    // Until a clone is measured, assume the worst: all of its RAM private.
    let perCloneMib = profile.memoryMib + 64;
    const image = env.service.image(profile.image);
    const imagePaths = [image.kernelPath, image.initrdPath];
    for (const wanted of counts) {
      while (clones.length < wanted) {
        if (vmsThatFit(hostMemory(), perCloneMib) < 1) {
          limited = {
            reached: clones.length,
            wanted,
            why: `host memory: ${hostMemory().availableMib} MiB available, about ${perCloneMib} MiB per clone assumed`,
          };
          break;
        }
        const c = await env.snapshots.clone(profile);
        clones.push(c);
        await c.exec({ argv: ['true'] });
      }
      if (clones.length === 0) break;
      await new Promise((r) => setTimeout(r, options.idleMs ?? 2000));
      const rollups = clones.map((c) => rollupKib(c.pid!));
      const totalPssKib = sum(rollups.map((r) => r.pssKib));
      const point = {
        clones: clones.length,
        totalPssKib,
        perClonePssKib: totalPssKib / clones.length,
        coldPssKib: pssKib(cold.pid!),
        coldImagePssKib: smapsBreakdown(cold.pid!, { ramMib: profile.memoryMib, imagePaths }).kinds['guest-image'].pssKib,
      };
      if (points.at(-1)?.clones !== point.clones) points.push(point);
      log(`${point.clones} idle clone(s): ${(totalPssKib / 1024).toFixed(1)} MiB PSS in total, cold VM ${(point.coldPssKib / 1024).toFixed(1)} MiB`);
      // Twice the largest RSS (which counts shared pages in full) per further clone.
      perCloneMib = Math.max(32, Math.ceil((2 * Math.max(...rollups.map((r) => r.rssKib))) / 1024));
      if (limited) break;
    }
    if (clones.length === 0) throw new Error(limited?.why ?? 'no clone was made');
    const breakdown = {
      clone: smapsBreakdown(clones[0].pid!, { ramPath: snapshot.files.memoryPath, ramMib: profile.memoryMib, imagePaths }),
      cold: smapsBreakdown(cold.pid!, { ramMib: profile.memoryMib, imagePaths }),
    };
    return { points, ...(limited ? { limited } : {}), breakdown, memoryMib: profile.memoryMib };
  } finally {
    await env.close();
  }
}
