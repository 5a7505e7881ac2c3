/**
 * Restore throughput (the `throughput` suite of `tfc bench`): clones of the
 * default profile's golden snapshot restored N at a time, kept alive until
 * the whole batch is ready (so no destroy competes): clones per second over
 * the batch, and per core.
 */
import { resolveProfile, type Config } from '../config/index.js';
import type { Vm } from '../vm/index.js';
import { cloneBatch, openBenchEnv, type BenchLog } from './common.js';

export interface ThroughputPoint {
  concurrency: number;
  clones: number;
  wallMs: number;
  perSec: number;
}

/**
 * For each of `concurrencies` (after one unmeasured restore): `count`
 * clones restored that many at a time. All are stopped before the next
 * batch, also when a restore throws (which ends the measurement).
 */
export async function restoreThroughput(config: Config, count: number, concurrencies: number[], log: BenchLog = () => undefined): Promise<ThroughputPoint[]> {
  const env = await openBenchEnv(config);
  try {
    const profile = resolveProfile(env.config);
    await env.snapshots.ensure(profile);
    await env.service.destroy(await env.snapshots.clone(profile));
    const results: ThroughputPoint[] = [];
    for (const concurrency of concurrencies) {
      const vms: Vm[] = [];
      try {
        const wallMs = await cloneBatch(env, profile, count, concurrency, vms);
        results.push({ concurrency, clones: count, wallMs, perSec: count / (wallMs / 1000) });
        log(`${count} clones at concurrency ${concurrency}: ${results.at(-1)!.perSec.toFixed(2)} per second`);
      } finally {
        await Promise.allSettled(vms.map((vm) => env.service.destroy(vm)));
      }
    }
    return results;
  } finally {
    await env.close();
  }
}
