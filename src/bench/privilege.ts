/**
 * The cost of the privilege model (docs/security.md), measured side by side
 * in one run: cold boots and clone restores alternate between a runtime with
 * `security.drop_privileges = true` (QEMU under -sandbox and -runas, a uid
 * per VM) and one with it off (QEMU as root, no seccomp), same profile, same
 * golden snapshot. Prints medians and the ratio dropped/privileged.
 *
 *   npm run bench:privilege -- [--runs N]
 *
 * It reports, it does not judge (exit 0 either way).
 */
import Table from 'cli-table3';
import { loadConfig, resolveProfile, type Config } from '../config/index.js';
import { composeRuntime } from '../runtime/index.js';
import { intArg, median } from './common.js';

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

function withPrivileges(config: Config, dropPrivileges: boolean): Config {
  return { ...config, security: { ...config.security, dropPrivileges } };
}

async function main(): Promise<void> {
  const runs = intArg('runs', 5);
  const { config } = loadConfig();
  const modes = [
    { name: 'dropped (sandbox + uid per VM)', runtime: await composeRuntime(withPrivileges(config, true)) },
    { name: 'privileged (root, no sandbox)', runtime: await composeRuntime(withPrivileges(config, false)) },
  ];
  const results = modes.map(() => ({ cold: [] as number[], restore: [] as number[] }));
  try {
    const profile = resolveProfile(config);
    await modes[0].runtime.snapshots.ensure(profile);
    for (let run = 0; run < runs; run++) {
      for (const [i, mode] of modes.entries()) {
        const cold = await mode.runtime.service.create({ profile });
        if ((await cold.exec({ argv: ['true'] })).exitCode !== 0) throw new Error(`${mode.name}: guest command failed`);
        results[i].cold.push(sum(cold.bootPhases.map((p) => p.ms)));
        await mode.runtime.service.destroy(cold);
        const clone = await mode.runtime.snapshots.clone(profile);
        if ((await clone.exec({ argv: ['true'] })).exitCode !== 0) throw new Error(`${mode.name}: clone command failed`);
        results[i].restore.push(sum(clone.bootPhases.map((p) => p.ms)));
        await mode.runtime.service.destroy(clone);
        process.stderr.write(
          `  run ${run + 1}/${runs} ${mode.name}: cold ${results[i].cold.at(-1)!.toFixed(0)} ms, restore ${results[i].restore.at(-1)!.toFixed(1)} ms\n`,
        );
      }
    }
  } finally {
    for (const m of modes) await m.runtime.close('benchmark finished');
  }
  const table = new Table({ head: ['mode', 'cold boot to agent-ready ms (median)', 'clone restore ms (median)'], style: { head: [], border: [] } });
  for (const [i, m] of modes.entries()) table.push([m.name, median(results[i].cold).toFixed(0), median(results[i].restore).toFixed(1)]);
  const ratio = (k: 'cold' | 'restore') => (median(results[0][k]) / median(results[1][k])).toFixed(2);
  table.push(['dropped / privileged', `${ratio('cold')}x`, `${ratio('restore')}x`]);
  process.stdout.write(`privilege model cost: ${runs} interleaved runs each (${new Date().toISOString()})\n${table.toString()}\n`);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err?.stack ?? err}\n`);
  process.exit(1);
});
