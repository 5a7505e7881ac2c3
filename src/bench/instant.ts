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
import Table from 'cli-table3';
import { pino } from 'pino';
import { loadConfig, resolveProfile } from '../config/index.js';
import { startDaemon } from '../daemon/index.js';
import { intArg, median, openBenchEnv, percentile } from './common.js';
import { pssKib } from './memory.js';
import { pythonFigures } from './python.js';
import { resolveImage } from '../guest/image-store.js';
import { dataLayout } from '../store/index.js';

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

async function restoreVsBoot(runs: number) {
  const env = await openBenchEnv();
  const profile = resolveProfile(env.config);
  const snapshots = env.snapshots;
  await snapshots.ensure(profile);
  const cold: number[] = [];
  const restored: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const a = await env.service.create({ profile });
      cold.push(sum(a.bootPhases.map((p) => p.ms)));
      await env.service.destroy(a);
      const b = await snapshots.clone(profile);
      restored.push(sum(b.bootPhases.map((p) => p.ms)));
      await env.service.destroy(b);
      process.stderr.write(`  run ${i + 1}/${runs}: cold boot ${cold.at(-1)!.toFixed(0)} ms, clone restore ${restored.at(-1)!.toFixed(1)} ms\n`);
    }
  } finally {
    await env.close();
  }
  return { cold: median(cold), restored: median(restored) };
}

async function memory() {
  const env = await openBenchEnv();
  const profile = resolveProfile(env.config);
  const snapshots = env.snapshots;
  await snapshots.ensure(profile);
  try {
    const cold = await env.service.create({ profile });
    await cold.exec({ argv: ['true'] });
    const clones = [];
    for (let i = 0; i < 10; i++) {
      const c = await snapshots.clone(profile);
      await c.exec({ argv: ['true'] });
      clones.push(c);
    }
    await new Promise((r) => setTimeout(r, 2000)); // idle
    const coldKib = pssKib(cold.pid!);
    const clonesKib = sum(clones.map((c) => pssKib(c.pid!)));
    return { coldKib, clonesKib };
  } finally {
    await env.close();
  }
}

async function allocation(count: number) {
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

main().catch((err) => {
  process.stderr.write(`bench failed: ${err?.stack ?? err}\n`);
  process.exit(1);
});
