/**
 * The three targets of instant VMs, measured side by side in one run and
 * printed as figures:
 *
 * 1. clone restore to agent-ready <= 5% of cold boot to agent-ready (same
 *    profile; boots and restores interleaved);
 * 2. warm allocation through the REST API (request to response, VM resumed
 *    and agent answering) p50 <= 5 ms, p99 <= 20 ms with the pool non-empty;
 * 3. ten idle clones of one golden snapshot use in total (PSS) at most twice
 *    the memory of one cold-booted VM of the same profile;
 * 4. when the `python` image is built, the runtime-image figures of
 *    bench/python.ts (clone to first python line vs cold boot, POST /v1/run
 *    p50/p99, daemon RSS during a 1 GiB transfer).
 *
 *   npm run bench:instant -- [--runs N] [--allocations N]
 *
 * Exit code 0 whether or not targets are met: it reports, it does not judge
 * (CI does not run it; the machine's noise would make it flaky).
 */
import { pathToFileURL } from 'node:url';
import Table from 'cli-table3';
import { pino } from 'pino';
import { loadConfig, resolveProfile } from '../config/index.js';
import { startDaemon } from '../daemon/index.js';
import { intArg, median, msThrough, openBenchEnv, percentile, sum, type BenchEnv } from './common.js';
import { idleDensity } from './memory.js';
import type { PhaseTiming } from '../steps/index.js';
import type { Vm } from '../vm/index.js';
import { pythonFigures } from './python.js';
import { resolveImage } from '../guest/image-store.js';
import { dataLayout } from '../store/index.js';

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
}

/**
 * Cold boots and clone restores of the default profile, interleaved
 * (`runs` of each), timed by their phases; medians and the samples.
 * Creates the golden snapshot when missing. Throws when a cold boot or a
 * plain restore fails.
 */
export async function restoreVsBoot(runs: number, options: RestoreVsBootOptions = {}) {
  const env = await openBenchEnv();
  const profile = resolveProfile(env.config);
  // Why restores from standbys were not (or no longer) measured; they never fail the rest.
  let standbyWhy: string | undefined = options.standby && !(profile.standbyVmms > 0) ? `profiles.${profile.name}.standby_vmms is 0` : undefined;
  let standbyEnv = options.standby && !standbyWhy ? await openBenchEnv({ standbyVmms: true }) : undefined;
  const standbyFailed = async (err: unknown) => {
    standbyWhy = err instanceof Error ? err.message.split('\n')[0] : String(err);
    process.stderr.write(`  restore from a standby VMM failed: ${standbyWhy}\n`);
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
      process.stderr.write(
        `  run ${i + 1}/${runs}: cold boot ${samples.cold.at(-1)!.toFixed(0)} ms, clone restore ${samples.restored.at(-1)!.toFixed(1)} ms${standbyNote}\n`,
      );
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

async function memory() {
  const result = await idleDensity({ counts: [10] });
  const at10 = result.points.find((p) => p.clones === 10);
  if (!at10) throw new Error(`only ${result.points.at(-1)?.clones ?? 0} clones fit: ${result.limited?.why ?? ''}`);
  return { coldKib: at10.coldPssKib, clonesKib: at10.totalPssKib };
}

/**
 * Warm allocations through the REST API of a daemon with a default pool of
 * 2 running VMs, one request at a time, each after the pool refilled:
 * client-side request-to-response times and the daemon's own allocation_ms.
 */
export async function allocation(count: number) {
  const { config } = loadConfig();
  config.pools.default = { ...config.pools.default, min: 2, max: 2, target: 2, prewarmState: 'running' };
  const token = 'bench-token-0123456789abcdef';
  const daemon = await startDaemon(config, { listen: '127.0.0.1:0', env: { TFC_TOKEN: token }, logger: pino({ level: 'warn' }, pino.destination(2)) });
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const times: number[] = [];
  const serverTimes: number[] = [];
  try {
    const pool = daemon.pools.get('default');
    for (let i = 0; i < count; i++) {
      // "With the pool non-empty": wait until the refill has finished (no
      // restore competing for the two cores), then time one request.
      const deadline = Date.now() + 60_000;
      const settled = () => pool.status().ready >= pool.status().target && pool.status().booting === 0;
      while (!settled() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 20));
      const started = performance.now();
      const res = await fetch(`${daemon.url}/v1/pools/default/allocate`, { method: 'POST', headers, body: '{}' });
      const body = (await res.json()) as { vm: { id: string }; allocation_ms: number };
      times.push(performance.now() - started);
      serverTimes.push(body.allocation_ms);
      if (res.status !== 201) throw new Error(`allocate answered ${res.status}`);
      await fetch(`${daemon.url}/v1/vms/${body.vm.id}`, { method: 'DELETE', headers: { authorization: headers.authorization } });
    }
  } finally {
    await daemon.close();
  }
  return {
    p50: percentile(times, 50),
    p90: percentile(times, 90),
    p99: percentile(times, 99),
    max: Math.max(...times),
    serverP99: percentile(serverTimes, 99),
    count,
  };
}

async function main(): Promise<void> {
  const runs = intArg('runs', 5);
  const allocations = intArg('allocations', 300);
  process.stderr.write('1/3 cold boot vs clone restore\n');
  const speed = await restoreVsBoot(runs);
  process.stderr.write('2/3 warm allocation through the API\n');
  const alloc = await allocation(allocations);
  process.stderr.write('3/3 memory of ten idle clones vs one cold-booted VM\n');
  const mem = await memory();
  const ratio = speed.restored / speed.cold;
  const memRatio = mem.clonesKib / mem.coldKib;
  const table = new Table({ head: ['target', 'measured', 'goal', 'met'], style: { head: [], border: [] } });
  table.push(
    [
      `clone restore vs cold boot to agent-ready (median of ${runs} each)`,
      `${speed.restored.toFixed(1)} ms vs ${speed.cold.toFixed(0)} ms = ${(ratio * 100).toFixed(2)}%`,
      '<= 5%',
      ratio <= 0.05 ? 'yes' : 'NO',
    ],
    [`warm allocation p50 (${alloc.count} requests)`, `${alloc.p50.toFixed(2)} ms`, '<= 5 ms', alloc.p50 <= 5 ? 'yes' : 'NO'],
    [
      `warm allocation p99 (${alloc.count} requests; p90 ${alloc.p90.toFixed(2)}, max ${alloc.max.toFixed(2)}; in-daemon p99 ${alloc.serverP99.toFixed(2)})`,
      `${alloc.p99.toFixed(2)} ms`,
      '<= 20 ms',
      alloc.p99 <= 20 ? 'yes' : 'NO',
    ],
    [
      'ten idle clones vs one cold VM (PSS)',
      `${(mem.clonesKib / 1024).toFixed(1)} MiB vs ${(mem.coldKib / 1024).toFixed(1)} MiB = ${memRatio.toFixed(2)}x`,
      '<= 2x',
      memRatio <= 2 ? 'yes' : 'NO',
    ],
  );
  if (pythonImageBuilt()) {
    process.stderr.write('4/4 runtime image (python profile)\n');
    table.push(...(await pythonFigures({ runs, requests: 50, transferMib: intArg('transfer-mib', 1024), step: (l) => process.stderr.write(`  ${l}\n`) })));
  } else {
    process.stderr.write('4/4 runtime image: skipped, the python image is not built (`tfc image build python`)\n');
  }
  process.stdout.write(`instant VM targets (${new Date().toISOString()}):\n${table.toString()}\n`);
}

function pythonImageBuilt(): boolean {
  try {
    resolveImage(dataLayout(loadConfig().config.dataDir), 'python');
    return true;
  } catch {
    return false;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    process.stderr.write(`bench failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  });
}
