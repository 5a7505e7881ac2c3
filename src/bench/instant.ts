/**
 * Cold boot vs clone restore of the default profile, measured side by side
 * in one run (boots and restores interleaved, so host noise hits both
 * alike): the `instant` suite of `tfc bench`, and the first rows of the
 * `limits` suite (which interleaves raw QEMU boots and standby restores).
 */
import type { Config } from '../config/index.js';
import { resolveProfile } from '../config/index.js';
import { median, msThrough, openBenchEnv, sum, type BenchEnv, type BenchLog } from './common.js';
import type { PhaseTiming } from '../steps/index.js';
import type { Vm } from '../vm/index.js';

/** Timings of `restoreVsBoot` in ms, one entry per run. */
export interface BootSamples {
  /** Cold boot to agent ready (sum of its phases). */
  cold: number[];
  /** Cold boot to the end of the `kernel` phase (init printed its marker). */
  coldToKernel: number[];
  /** Clone restore to agent ready (sum of its phases). */
  restored: number[];
  /** The same with a standby VMM waiting (the daemon's path); empty unless asked for. */
  restoredStandby: number[];
  /** The phases of each cold boot, each restore and each restore from a standby. */
  coldPhases: Array<readonly PhaseTiming[]>;
  restorePhases: Array<readonly PhaseTiming[]>;
  standbyPhases: Array<readonly PhaseTiming[]>;
}

export interface RestoreVsBootOptions {
  /**
   * Another measurement to interleave with these, given the same runtime:
   * it runs before the cold boot in even runs and after the restores in
   * odd ones, so neither side always follows the other.
   */
  eachRun?: (run: number, env: BenchEnv) => Promise<void>;
  /** Sees each cold-booted VM while it runs. */
  onColdBoot?: (vm: Vm, env: BenchEnv) => void;
  /**
   * Also restore through a second runtime that keeps standby VMMs (as the
   * daemon does), each time with one waiting, and wait for its replacement
   * before going on, so starting it overlaps no other measurement. A
   * failure there ends only these restores (`standbyWhy` says why).
   */
  standby?: boolean;
  /** Progress lines. Default: none. */
  log?: BenchLog;
}

/**
 * Cold boots and clone restores of the default profile, interleaved
 * (`runs` of each), timed by their phases; medians and the samples.
 * Creates the golden snapshot when missing. Throws when a cold boot or a
 * plain restore fails.
 */
export async function restoreVsBoot(config: Config, runs: number, options: RestoreVsBootOptions = {}) {
  const log = options.log ?? (() => undefined);
  const env = await openBenchEnv(config);
  const profile = resolveProfile(env.config);
  // Why restores from standbys were not (or no longer) measured; they never fail the rest.
  let standbyWhy: string | undefined = options.standby && !(profile.standbyVmms > 0) ? `profiles.${profile.name}.standby_vmms is 0` : undefined;
  let standbyEnv = options.standby && !standbyWhy ? await openBenchEnv(config, { standbyVmms: true }) : undefined;
  const standbyFailed = async (err: unknown) => {
    standbyWhy = err instanceof Error ? err.message.split('\n')[0] : String(err);
    log(`restore from a standby VMM failed: ${standbyWhy}`);
    await standbyEnv?.close();
    standbyEnv = undefined;
  };
  const snapshots = env.snapshots;
  const samples: BootSamples = { cold: [], coldToKernel: [], restored: [], restoredStandby: [], coldPhases: [], restorePhases: [], standbyPhases: [] };
  try {
    await snapshots.ensure(profile);
    if (standbyEnv) {
      // The first restore asks for standbys; it has none yet.
      await standbyEnv.service
        .destroy(await standbyEnv.snapshots.clone(profile))
        .then(() => standbyReady(standbyEnv!))
        .catch(standbyFailed);
    }
    for (let i = 0; i < runs; i++) {
      if (i % 2 === 0) await options.eachRun?.(i, env);
      const a = await env.service.create({ profile });
      samples.cold.push(sum(a.bootPhases.map((p) => p.ms)));
      samples.coldToKernel.push(msThrough(a.bootPhases, 'kernel'));
      samples.coldPhases.push(a.bootPhases);
      options.onColdBoot?.(a, env);
      await env.service.destroy(a);
      const b = await snapshots.clone(profile);
      samples.restored.push(sum(b.bootPhases.map((p) => p.ms)));
      samples.restorePhases.push(b.bootPhases);
      await env.service.destroy(b);
      let standbyNote = '';
      if (standbyEnv) {
        const from = standbyEnv;
        try {
          const c = await from.snapshots.clone(profile);
          samples.restoredStandby.push(sum(c.bootPhases.map((p) => p.ms)));
          samples.standbyPhases.push(c.bootPhases);
          await from.service.destroy(c);
          await standbyReady(from);
          standbyNote = `, with a standby VMM ${samples.restoredStandby.at(-1)!.toFixed(1)} ms`;
        } catch (err) {
          await standbyFailed(err);
        }
      }
      if (i % 2 === 1) await options.eachRun?.(i, env);
      log(`run ${i + 1}/${runs}: cold boot ${samples.cold.at(-1)!.toFixed(0)} ms, clone restore ${samples.restored.at(-1)!.toFixed(1)} ms${standbyNote}`);
    }
  } finally {
    await standbyEnv?.close();
    await env.close();
  }
  return {
    cold: median(samples.cold),
    restored: median(samples.restored),
    coldToKernel: median(samples.coldToKernel),
    ...(samples.restoredStandby.length > 0 ? { restoredStandby: median(samples.restoredStandby) } : {}),
    ...(standbyWhy ? { standbyWhy } : {}),
    samples,
  };
}

/** Waits (at most a minute) until a standby VMM is waiting and none is being started. */
async function standbyReady(env: BenchEnv): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const status = env.service.standbyStatus();
    if (status.some((s) => s.ready > 0) && status.every((s) => !s.starting)) return;
    if (Date.now() > deadline) {
      const why =
        status.map((s) => s.lastError).find((e) => e) ?? (status.length === 0 ? 'no standby was asked for (profiles.X.standby_vmms = 0?)' : 'still starting');
      throw new Error(`no standby VMM became ready within 60 s: ${why}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
