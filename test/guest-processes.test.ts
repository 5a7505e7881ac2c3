import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import type { AgentClient, AgentProcessEvent } from '../src/guest/agent-client.js';
import { composeRuntime, type Runtime } from '../src/runtime/index.js';
import type { Vm } from '../src/vm/index.js';
import { alive } from './hostile/own-leftovers.js';
import { testDataDir } from './helpers.js';

/**
 * Background processes in a real guest (QEMU, minimal busybox image, the
 * static agent): streamed output that arrives while the process runs, stdin,
 * signals, a shell on a pty that sees its size change, and requests answered
 * while an exec runs. Latencies under TCG are printed.
 */
type ExitEvent = Extract<AgentProcessEvent, { type: 'exit' }>;

function record(agent: AgentClient, pid: () => number) {
  const events: AgentProcessEvent[] = [];
  const stop = agent.onProcessEvent((e) => {
    if (e.pid === pid()) events.push(e);
  });
  const text = () => Buffer.concat(events.flatMap((e) => (e.type === 'exit' ? [] : [e.data]))).toString();
  const exit = () => events.find((e): e is ExitEvent => e.type === 'exit');
  const until = async (what: string, cond: () => boolean, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output so far: ${JSON.stringify(text())}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { events, stop, text, exit, until };
}

describe('background processes in a real VM', () => {
  let runtime: Runtime;
  let vm: Vm;
  let vmmPid = 0;

  beforeAll(async () => {
    const dataDir = testDataDir();
    const { config } = loadConfig({ env: { TFC_DATA_DIR: dataDir }, cwd: dataDir });
    runtime = await composeRuntime(config, { networking: false });
    vm = await runtime.service.create({ profile: runtime.config.profiles.minimal! });
    vmmPid = vm.pid!;
  });

  afterAll(async () => {
    await runtime?.close('test finished');
    expect(vmmPid === 0 || (!alive(vmmPid) && !existsSync(join(runtime.layout.runVms, vm.id)))).toBe(true);
  });

  it('streams output while the process runs, takes stdin, reports the exit after the output', async () => {
    const agent = vm.agent;
    expect(agent.supportsProcesses).toBe(true);
    let pid = 0;
    const rec = record(agent, () => pid);
    const t0 = performance.now();
    ({ pid } = await agent.spawn({ argv: ['sh', '-c', 'echo ready; read line; echo "got $line"; echo bye >&2; exit 6'] }));
    const spawnMs = performance.now() - t0;
    await rec.until('ready', () => rec.text() === 'ready\n');
    const firstOutputMs = performance.now() - t0;
    expect(rec.exit()).toBeUndefined();
    expect((await agent.listProcesses()).find((p) => p.pid === pid)).toMatchObject({ running: true, pty: false });
    await agent.writeStdin(pid, Buffer.from('hello guest\n'));
    await rec.until('the exit', () => rec.exit() !== undefined);
    rec.stop();
    expect(rec.exit()).toMatchObject({ exitCode: 6, signal: null });
    expect(rec.events.at(-1)?.type).toBe('exit');
    expect(rec.text()).toContain('got hello guest\n');
    expect(Buffer.concat(rec.events.flatMap((e) => (e.type === 'stderr' ? [e.data] : []))).toString()).toBe('bye\n');
    console.log(`[guest-processes] spawn answered in ${spawnMs.toFixed(0)} ms, first output after ${firstOutputMs.toFixed(0)} ms (TCG)`);

    // SIGTERM to a sleeping process ends it by that signal.
    let sleeper = 0;
    const term = record(agent, () => sleeper);
    ({ pid: sleeper } = await agent.spawn({ argv: ['sleep', '100'] }));
    await agent.signalProcess(sleeper, 'SIGTERM');
    await term.until('the SIGTERM exit', () => term.exit() !== undefined);
    term.stop();
    expect(term.exit()).toMatchObject({ exitCode: null, signal: 'SIGTERM' });
  });

  it('runs a shell on a pty whose size follows resize', async () => {
    const agent = vm.agent;
    let pid = 0;
    const rec = record(agent, () => pid);
    ({ pid } = await agent.spawn({ argv: ['sh'], pty: { cols: 100, rows: 30 } }));
    await agent.writeStdin(pid, Buffer.from('stty size; tty\n'));
    await rec.until('the spawn size', () => /30 100\r\n/.test(rec.text()) && /\/dev\/pts\/\d+/.test(rec.text()));
    await agent.resizePty(pid, 132, 50);
    await agent.writeStdin(pid, Buffer.from('stty size\n'));
    await rec.until('the new size', () => /50 132\r\n/.test(rec.text()));
    await agent.writeStdin(pid, Buffer.from('exit 3\n'));
    await rec.until('the exit', () => rec.exit() !== undefined);
    rec.stop();
    expect(rec.exit()).toMatchObject({ exitCode: 3 });
    expect(rec.events.some((e) => e.type === 'stderr')).toBe(false);
  });

  it('answers a ping while an exec runs', async () => {
    const t0 = performance.now();
    const exec = vm.exec({ argv: ['sh', '-c', 'sleep 2; echo slept'] });
    await vm.agent.ping();
    const pingMs = performance.now() - t0;
    const r = await exec;
    const execMs = performance.now() - t0;
    console.log(`[guest-processes] ping during a 2 s exec answered after ${pingMs.toFixed(0)} ms; exec after ${execMs.toFixed(0)} ms`);
    expect(r.stdout.toString()).toBe('slept\n');
    expect(pingMs).toBeLessThan(1_500);
    // Guest time runs at its own pace under TCG: compare with the guest's own measure.
    expect(pingMs).toBeLessThan(r.durationMs / 2);
    expect(r.durationMs).toBeGreaterThanOrEqual(1_900);
  });
});
