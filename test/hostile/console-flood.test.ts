import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { composeRuntime, type Runtime } from '../../src/runtime/index.js';
import type { Vm } from '../../src/vm/index.js';
import { alive } from './own-leftovers.js';
import { scratchDir, testDataDir, writeConfig } from '../helpers.js';

/**
 * A guest writes 50 MB to its serial console without a newline. The host
 * process (here the test process owns the VMs, as the daemon would) must
 * stay bounded in memory, the console log within its cap, and a neighbour
 * VM must keep answering. The figures are printed; only generous bounds
 * are asserted (this 2-core machine is shared).
 */
const FLOOD_BYTES = 50 * 1024 * 1024;
const LOG_CAP = 1024 * 1024;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * Exec latencies of `vm`, one exec every `everyMs` (a paced probe, not a
 * load: a tight loop would steal the CPU the flood runs on), at least
 * `count` of them and then until `until()` says stop.
 */
async function execLatencies(vm: Vm, count: number, everyMs: number, until?: () => boolean): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count || (until && !until()); i++) {
    const started = performance.now();
    const r = await vm.exec({ argv: ['true'] });
    const ms = performance.now() - started;
    out.push(ms);
    expect(r.exitCode).toBe(0);
    if (until?.()) break;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, everyMs - ms)));
  }
  return out;
}

describe('a guest flooding its console (real VMs)', () => {
  const dir = scratchDir('tfc-flood-');
  let runtime: Runtime;
  const made: Array<{ pid: number; runDir: string }> = [];

  beforeAll(async () => {
    const configPath = writeConfig(dir.path, `[vmm]\nconsole_log_max_bytes = ${LOG_CAP}\n`);
    const { config } = loadConfig({ configPath, env: { TFC_DATA_DIR: testDataDir() } });
    expect(config.vmm.consoleLogMaxBytes).toBe(LOG_CAP);
    runtime = await composeRuntime(config, { networking: false });
  });

  afterAll(async () => {
    await runtime?.close('test finished');
    dir.remove();
    // Other suites share the test data dir at the same time: check only what this one made.
    expect(made.filter((m) => alive(m.pid) || existsSync(m.runDir))).toEqual([]);
  });

  async function bootVm(): Promise<Vm> {
    const vm = await runtime.service.create({ profile: runtime.config.profiles.minimal! });
    made.push({ pid: vm.pid!, runDir: join(runtime.layout.runVms, vm.id) });
    return vm;
  }

  it('50 MB without a newline: bounded host memory, capped log, neighbour keeps answering', async () => {
    const flooder = await bootVm();
    const neighbour = await bootVm();
    try {
      const baseline = await execLatencies(neighbour, 10, 250);
      const rssStart = process.memoryUsage().rss;
      let rssMax = rssStart;
      const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 100);
      let flooding = true;
      const started = performance.now();
      // /dev/console is the serial port (console=ttyS0), the same one the guest init writes to.
      const flood = flooder
        .exec({ argv: ['sh', '-c', `head -c ${FLOOD_BYTES} /dev/zero | tr '\\000' x > /dev/console`], timeoutMs: 900_000 })
        .finally(() => (flooding = false));
      const during = await execLatencies(neighbour, 5, 250, () => !flooding);
      const result = await flood;
      const floodMs = performance.now() - started;
      clearInterval(sampler);
      rssMax = Math.max(rssMax, process.memoryUsage().rss);

      const logPath = join(runtime.layout.logs, `${flooder.id}.console.log`);
      const logBytes = statSync(logPath).size + (existsSync(`${logPath}.1`) ? statSync(`${logPath}.1`).size : 0);
      const growthMiB = (rssMax - rssStart) / 2 ** 20;
      console.log(
        `[console-flood] ${FLOOD_BYTES / 2 ** 20} MiB in ${(floodMs / 1000).toFixed(1)} s (${(FLOOD_BYTES / 2 ** 20 / (floodMs / 1000)).toFixed(2)} MiB/s); ` +
          `host RSS growth max ${growthMiB.toFixed(1)} MiB; console log kept ${logBytes} bytes (cap ${LOG_CAP}); ` +
          `neighbour exec latency before p50 ${percentile(baseline, 50).toFixed(0)} ms, during the flood p50 ${percentile(during, 50).toFixed(0)} ms ` +
          `p95 ${percentile(during, 95).toFixed(0)} ms max ${Math.max(...during).toFixed(0)} ms over ${during.length} execs`,
      );

      expect(result.exitCode).toBe(0);
      expect(result.timedOut).toBe(false);
      expect(growthMiB).toBeLessThan(64);
      expect(logBytes).toBeLessThanOrEqual(LOG_CAP);
      expect(logBytes).toBeGreaterThanOrEqual(LOG_CAP / 2);
      // Generous: the neighbour answers within seconds, not minutes, while the flood runs.
      expect(percentile(during, 50)).toBeLessThan(5_000);
      // The flooder is still a working VM afterwards.
      expect((await flooder.exec({ argv: ['echo', 'ok'] })).stdout.toString()).toBe('ok\n');
    } finally {
      await runtime.service.destroy(flooder).catch(() => undefined);
      await runtime.service.destroy(neighbour).catch(() => undefined);
    }
  }, 1_200_000);
});
