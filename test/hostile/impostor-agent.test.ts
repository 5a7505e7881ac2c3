import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { encodeFrame } from '../../src/guest/agent-frame.js';
import { composeRuntime, type Runtime } from '../../src/runtime/index.js';
import type { Vm } from '../../src/vm/index.js';
import { alive } from './own-leftovers.js';
import { testDataDir } from '../helpers.js';

/**
 * Root inside the guest kills the real agent and takes over its port
 * (virtio-serial under QEMU), then writes what it likes to the host. The
 * host must hang up at the first frame it did not ask for, mark the VM
 * failed with the reason, and stay healthy; other VMs keep working.
 */

/** Finds the agent's port like the agent does (by its virtio-serial name). */
const FIND_PORT = 'DEV=/dev/vport0p1; for p in /sys/class/virtio-ports/*; do [ "$(cat "$p/name")" = org.tfc.agent ] && DEV="/dev/${p##*/}"; done';

/**
 * The impostor: detaches from the agent's pipes, kills the agent (init
 * restarts it after 1 s), opens the port before that and writes
 * /tmp/impostor.bin to it in a loop until the port breaks.
 */
const IMPOSTOR = `exec </dev/null >/dev/null 2>&1; ${FIND_PORT}; kill -9 "$1"; usleep 100000; exec 3<>"$DEV" || exit 1; while cat /tmp/impostor.bin >&3; do :; done`;

function rssBytes(): number {
  return process.memoryUsage().rss;
}

describe('an impostor agent in the guest (real VMs)', () => {
  let runtime: Runtime;
  // Other suites share the test data dir at the same time: check only what this one made.
  const made: Array<{ pid: number; runDir: string }> = [];

  beforeAll(async () => {
    const dataDir = testDataDir();
    const { config } = loadConfig({ env: { TFC_DATA_DIR: dataDir }, cwd: dataDir });
    runtime = await composeRuntime(config, { networking: false });
  });

  afterAll(async () => {
    await runtime?.close('test finished');
    const left = made.filter((m) => alive(m.pid) || existsSync(m.runDir));
    expect(left).toEqual([]);
  });

  async function bootVm(): Promise<Vm> {
    const vm = await runtime.service.create({ profile: runtime.config.profiles.minimal! });
    made.push({ pid: vm.pid!, runDir: join(runtime.layout.runVms, vm.id) });
    return vm;
  }

  /** Runs the impostor with `payload` and waits until the host has given up on the VM. */
  async function takeOver(vm: Vm, payload: Buffer): Promise<{ execError: unknown; failedAfterMs: number }> {
    await vm.writeFile('/tmp/impostor.bin', payload);
    const agentPid = vm.hello!.pid;
    const failed = new Promise<number>((resolve) => {
      const started = Date.now();
      vm.onFailed(() => resolve(Date.now() - started));
    });
    // The exec never gets its real reply: the agent that would send it is killed.
    const execError = await vm.exec({ argv: ['sh', '-c', IMPOSTOR, 'impostor', String(agentPid)], timeoutMs: 60_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const failedAfterMs = await failed;
    return { execError, failedAfterMs };
  }

  it('a flood of replies to unknown ids: channel closed, VM failed with the reason, host unharmed', async () => {
    const vm = await bootVm();
    const neighbour = await bootVm();
    try {
      const frame = encodeFrame({ v: 1, id: 4242, ok: true, result: { uptime_ms: 1, padding: 'p'.repeat(4000) } });
      const payload = Buffer.concat(Array.from({ length: 256 }, () => frame)); // ~1 MiB per loop round
      const rssBefore = rssBytes();
      const { execError, failedAfterMs } = await takeOver(vm, payload);
      const rssGrowthMiB = (rssBytes() - rssBefore) / 2 ** 20;
      console.log(
        `[impostor] unknown-id flood: VM failed ${failedAfterMs} ms after the take-over started; test process RSS growth ${rssGrowthMiB.toFixed(1)} MiB`,
      );

      expect(execError).toMatchObject({ code: 'AGENT_PROTOCOL' });
      expect((execError as Error).message).toMatch(/reply to id 4242/);
      expect(vm.state).toBe('failed');
      const record = runtime.repo.get(vm.id)!;
      expect(record.state).toBe('failed');
      expect(record.errorCode).toBe('AGENT_PROTOCOL');
      expect(record.errorMessage).toMatch(/protocol violation.*reply to id 4242/);
      // Its VMM is stopped; the host did not buffer the flood.
      await expect(vm.exec({ argv: ['true'] })).rejects.toMatchObject({ code: 'INVALID_STATE' });
      expect(rssGrowthMiB).toBeLessThan(64);
      // The neighbour never noticed.
      const r = await neighbour.exec({ argv: ['echo', 'still here'] });
      expect(r.stdout.toString()).toBe('still here\n');
    } finally {
      await runtime.service.destroy(vm).catch(() => undefined);
      await runtime.service.destroy(neighbour).catch(() => undefined);
    }
  });

  it('a frame header announcing 4 GiB and garbage after it: refused at the header', async () => {
    const vm = await bootVm();
    try {
      const header = Buffer.from([0xff, 0xff, 0xff, 0xf0]);
      const payload = Buffer.concat([header, Buffer.alloc(1024 * 1024, 'x')]);
      const rssBefore = rssBytes();
      const { execError, failedAfterMs } = await takeOver(vm, payload);
      const rssGrowthMiB = (rssBytes() - rssBefore) / 2 ** 20;
      console.log(
        `[impostor] oversized frame: VM failed ${failedAfterMs} ms after the take-over started; test process RSS growth ${rssGrowthMiB.toFixed(1)} MiB`,
      );
      expect(execError).toMatchObject({ code: 'AGENT_PROTOCOL' });
      expect(vm.state).toBe('failed');
      const record = runtime.repo.get(vm.id)!;
      expect(record.errorCode).toBe('AGENT_PROTOCOL');
      expect(record.errorMessage).toMatch(/frame of 4294967280 bytes, more than the \d+-byte limit/);
      expect(rssGrowthMiB).toBeLessThan(64);
    } finally {
      await runtime.service.destroy(vm).catch(() => undefined);
    }
  });
});
