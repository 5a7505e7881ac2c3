/**
 * Measures each cold-boot optimisation level side by side in one run:
 * levels are interleaved (standard, fast, ..., standard, fast, ...) so host
 * noise hits them alike. Prints median time to agent-ready, the kernel
 * phase, the stop time, and the ratio to `standard`.
 *
 *   npm run bench:boot-levels -- [--runs N]
 */
import Table from 'cli-table3';
import { resolveProfile } from '../config/index.js';
import { bootLevelArgs } from '../vm/boot-levels.js';
import { intArg, median, openBenchEnv } from './common.js';

const LEVELS = ['standard', 'fast', 'ultrafast', 'sub2second'] as const;

async function main(): Promise<void> {
  const runs = intArg('runs', 3);
  const env = await openBenchEnv();
  const base = resolveProfile(env.config);
  const results = new Map<string, { ready: number[]; kernel: number[]; stop: number[] }>(LEVELS.map((l) => [l, { ready: [], kernel: [], stop: [] }]));
  try {
    for (let run = 0; run < runs; run++) {
      for (const level of LEVELS) {
        const vm = await env.service.create({ profile: { ...base, bootLevel: level } });
        const ready = vm.bootPhases.reduce((a, p) => a + p.ms, 0);
        const check = await vm.exec({ argv: ['true'] });
        if (check.exitCode !== 0) throw new Error(`level ${level}: guest command failed`);
        const stopStarted = performance.now();
        await env.service.destroy(vm);
        const r = results.get(level)!;
        r.ready.push(ready);
        r.kernel.push(vm.bootPhases.find((p) => p.name === 'kernel')?.ms ?? 0);
        r.stop.push(performance.now() - stopStarted);
        process.stderr.write(`  run ${run + 1}/${runs} ${level}: agent ready ${ready.toFixed(0)} ms\n`);
      }
    }
  } finally {
    await env.close();
  }
  const std = median(results.get('standard')!.ready);
  const table = new Table({
    head: ['level', 'agent ready ms (median)', 'kernel ms', 'stop ms', 'vs standard', 'kernel args added'],
    style: { head: [], border: [] },
  });
  let previous: string[] = [];
  for (const level of LEVELS) {
    const r = results.get(level)!;
    const args = bootLevelArgs(level);
    table.push([
      level,
      median(r.ready).toFixed(0),
      median(r.kernel).toFixed(0),
      median(r.stop).toFixed(0),
      `${(median(r.ready) / std).toFixed(2)}x`,
      args.slice(previous.length).join(' '),
    ]);
    previous = args;
  }
  process.stdout.write(`boot levels: ${runs} interleaved runs each, driver ${base.driver}, ${base.memoryMib} MiB, ${base.vcpus} vCPU\n${table.toString()}\n`);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err?.stack ?? err}\n`);
  process.exit(1);
});
