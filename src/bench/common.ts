import type { Config } from '../config/index.js';
import { composeRuntime } from '../runtime/index.js';
import type { SnapshotManager } from '../snapshot/index.js';
import type { DataLayout, Db, VmRepository } from '../store/index.js';
import type { Vm, VmProfile, VmService } from '../vm/index.js';

/** What every benchmark needs: config (from the usual lookup), store, a VM service, snapshots. Call `close()` at the end. */
export interface BenchEnv {
  config: Config;
  layout: DataLayout;
  db: Db;
  repo: VmRepository;
  service: VmService;
  snapshots: SnapshotManager;
  close(): Promise<void>;
}

/** Where a suite writes its progress lines (stderr in `tfc bench`). */
export type BenchLog = (line: string) => void;

/**
 * The runtime the CLI and the daemon use too (composeRuntime) on `config`,
 * so benchmarks measure the same wiring. `standbyVmms`: keep VMM processes
 * waiting for restores, as the daemon does (profiles.X.standby_vmms).
 * SIGINT while it is open stops its VMs and exits 130; `close()` (call it
 * once) stops them and removes that handler.
 */
export async function openBenchEnv(config: Config, options: { standbyVmms?: boolean } = {}): Promise<BenchEnv> {
  const runtime = await composeRuntime(config, options.standbyVmms ? { standbyVmms: true } : {});
  const onSigint = () => void runtime.close('benchmark interrupted').finally(() => process.exit(130));
  process.once('SIGINT', onSigint);
  const close = async () => {
    process.off('SIGINT', onSigint);
    await runtime.close('benchmark finished');
  };
  return { config, layout: runtime.layout, db: runtime.db, repo: runtime.repo, service: runtime.service, snapshots: runtime.snapshots, close };
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** Sum of the boot phases up to and including the one called `last`; throws naming the phases there are when none is. */
export function msThrough(phases: readonly { name: string; ms: number }[], last: string): number {
  const i = phases.findIndex((p) => p.name === last);
  if (i < 0) throw new Error(`no phase "${last}" among ${phases.map((p) => p.name).join(', ')}`);
  return sum(phases.slice(0, i + 1).map((p) => p.ms));
}

/**
 * The median of each phase over several runs, in the order phases first
 * appear; a phase missing from some runs is the median of the runs that have it.
 */
export function medianPhases(runs: ReadonlyArray<readonly { name: string; ms: number }[]>): Array<{ name: string; ms: number }> {
  const byName = new Map<string, number[]>();
  for (const phases of runs) for (const p of phases) byName.set(p.name, [...(byName.get(p.name) ?? []), p.ms]);
  return [...byName].map(([name, ms]) => ({ name, ms: median(ms) }));
}

/**
 * Restores `count` clones of `profile`'s golden snapshot, `concurrency` at
 * a time, pushing each into `vms` as it is ready (the caller destroys them,
 * also when this throws). Returns the wall time of the batch in ms.
 */
export async function cloneBatch(env: BenchEnv, profile: VmProfile, count: number, concurrency: number, vms: Vm[]): Promise<number> {
  let started = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < count) {
        started++;
        vms.push(await env.snapshots.clone(profile));
      }
    }),
  );
  return performance.now() - t0;
}
