import { describe, expect, it } from 'vitest';
import { ProcessRegistry } from './registry.js';
import type { ProcessAgent, ProcessAgentEvent, ProcessVm } from './types.js';

/** An agent whose processes are scripted by the test: `emit` delivers events as the real client would. */
class ScriptedAgent implements ProcessAgent {
  supportsProcesses = true;
  closed = false;
  nextPid = 100;
  /** Events delivered synchronously before the spawn answer resolves (as when both arrive in one read). */
  eventsBeforeAnswer: Array<Record<string, unknown>> = [];
  stdin: Array<{ pid: number; data: string; eof: boolean }> = [];
  signals: Array<[number, string]> = [];
  private listeners = new Set<(e: ProcessAgentEvent) => void>();

  async spawn(): Promise<{ pid: number }> {
    const pid = this.nextPid++;
    for (const e of this.eventsBeforeAnswer) this.emit({ ...e, pid } as unknown as ProcessAgentEvent);
    return { pid };
  }
  async writeStdin(pid: number, data: Buffer, options: { eof?: boolean } = {}) {
    this.stdin.push({ pid, data: data.toString(), eof: options.eof === true });
    return { bytesAccepted: data.length };
  }
  async closeStdin(pid: number) {
    this.stdin.push({ pid, data: '', eof: true });
  }
  async signalProcess(pid: number, signal: string) {
    this.signals.push([pid, signal]);
  }
  async resizePty() {}
  onProcessEvent(listener: (e: ProcessAgentEvent) => void) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(e: ProcessAgentEvent) {
    for (const l of this.listeners) l(e);
  }
  get listenerCount() {
    return this.listeners.size;
  }
}

function vmWith(agent: ProcessAgent, id = 'vm-000000000001'): ProcessVm & { fail(reason: string): void } {
  const failed = new Set<(r: string) => void>();
  return {
    id,
    agent,
    onFailed: (l) => {
      failed.add(l);
      return () => failed.delete(l);
    },
    fail: (reason) => failed.forEach((l) => l(reason)),
  };
}

const out = (pid: number, data: string): ProcessAgentEvent => ({ type: 'stdout', pid, data: Buffer.from(data) });
const exit = (pid: number, exitCode = 0): ProcessAgentEvent => ({ type: 'exit', pid, exitCode, signal: null, durationMs: 7 });

describe('ProcessRegistry', () => {
  it('records spawned processes and logs their events in order; ignores pids it did not start', async () => {
    const agent = new ScriptedAgent();
    const vm = vmWith(agent);
    const reg = new ProcessRegistry();
    const rec = await reg.spawn(vm, 0, { argv: ['sh', '-c', 'echo hi'] });
    agent.emit(out(rec.pid, 'hi\n'));
    agent.emit(out(999, 'not ours'));
    agent.emit(exit(rec.pid, 2));
    expect(rec.after(0).map((e) => e.type)).toEqual(['stdout', 'exit']);
    expect(rec.running).toBe(false);
    expect(rec.exit).toEqual({ exitCode: 2, signal: null, durationMs: 7 });
    expect(() => reg.get(vm, 0, 999)).toThrow(expect.objectContaining({ code: 'PROCESS_NOT_FOUND' }));
    expect(reg.list(vm, 0).map((r) => r.pid)).toEqual([rec.pid]);
  });

  it('keeps output that arrives before the spawn answer names the pid', async () => {
    const agent = new ScriptedAgent();
    agent.eventsBeforeAnswer = [
      { type: 'stdout', data: Buffer.from('fast') },
      { type: 'exit', exitCode: 0, signal: null, durationMs: 1 },
    ];
    const reg = new ProcessRegistry();
    const rec = await reg.spawn(vmWith(agent), 0, { argv: ['true'] });
    expect(rec.after(0).map((e) => e.type)).toEqual(['stdout', 'exit']);
  });

  it('subscribes once per agent connection', async () => {
    const agent = new ScriptedAgent();
    const vm = vmWith(agent);
    const reg = new ProcessRegistry();
    await reg.spawn(vm, 0, { argv: ['a'] });
    await reg.spawn(vm, 0, { argv: ['b'] });
    expect(agent.listenerCount).toBe(1);
    reg.dropVm(vm.id, 'test');
    expect(agent.listenerCount).toBe(0);
  });

  it('keeps at most N records: evicts the oldest exited one, and refuses with VM_BUSY when all run', async () => {
    const agent = new ScriptedAgent();
    const vm = vmWith(agent);
    const reg = new ProcessRegistry({ maxProcessesPerVm: 3 });
    const a = await reg.spawn(vm, 0, { argv: ['a'] });
    const b = await reg.spawn(vm, 0, { argv: ['b'] });
    await reg.spawn(vm, 0, { argv: ['c'] });
    await expect(reg.spawn(vm, 0, { argv: ['d'] })).rejects.toMatchObject({ code: 'VM_BUSY' });
    agent.emit(exit(b.pid));
    agent.emit(exit(a.pid));
    const d = await reg.spawn(vm, 0, { argv: ['d'] });
    // a started first, so it went first, whatever the order they exited in.
    expect(reg.list(vm, 0).map((r) => r.argv[0])).toEqual(['b', 'c', 'd']);
    expect(a.gone).toMatch(/make room/);
    expect(d.running).toBe(true);
  });

  it('drops everything of a VM that fails, or that was allocated again, and tells watchers', async () => {
    const agent = new ScriptedAgent();
    const vm = vmWith(agent);
    const reg = new ProcessRegistry();
    const rec = await reg.spawn(vm, 1, { argv: ['sleep', '9'] });
    const notices: string[] = [];
    rec.watch((n) => notices.push(n.type));
    vm.fail('VMM exited');
    expect(notices).toEqual(['gone']);
    expect(reg.vmIds()).toEqual([]);
    const again = await reg.spawn(vm, 1, { argv: ['x'] });
    // A new allocation of the same VM starts with no processes.
    expect(reg.list(vm, 2)).toEqual([]);
    expect(again.gone).toMatch(/allocated again/);
  });

  it('sweeps VMs that are no longer alive', async () => {
    const reg = new ProcessRegistry();
    const vm = vmWith(new ScriptedAgent());
    const rec = await reg.spawn(vm, 0, { argv: ['x'] });
    reg.sweep(() => true);
    expect(rec.gone).toBeUndefined();
    reg.sweep(() => false);
    expect(rec.gone).toMatch(/released or stopped/);
  });

  it('forwards stdin and signals only to running processes', async () => {
    const agent = new ScriptedAgent();
    const vm = vmWith(agent);
    const reg = new ProcessRegistry();
    const rec = await reg.spawn(vm, 0, { argv: ['cat'] });
    await reg.writeStdin(vm, 0, rec.pid, Buffer.from('hi'), false);
    await reg.writeStdin(vm, 0, rec.pid, Buffer.alloc(0), true);
    await reg.signal(vm, 0, rec.pid, 'SIGTERM');
    await expect(reg.resize(vm, 0, rec.pid, 80, 24)).rejects.toMatchObject({ code: 'INVALID_STATE' });
    expect(agent.stdin).toEqual([
      { pid: rec.pid, data: 'hi', eof: false },
      { pid: rec.pid, data: '', eof: true },
    ]);
    expect(agent.signals).toEqual([[rec.pid, 'SIGTERM']]);
    agent.emit(exit(rec.pid));
    await expect(reg.signal(vm, 0, rec.pid, 'SIGKILL')).rejects.toMatchObject({ code: 'INVALID_STATE', message: expect.stringMatching(/exited/) });
  });

  it('bounds output streams per VM', async () => {
    const reg = new ProcessRegistry({ maxStreamsPerVm: 2 });
    const vm = vmWith(new ScriptedAgent());
    const r1 = reg.openStream(vm, 0);
    reg.openStream(vm, 0);
    expect(() => reg.openStream(vm, 0)).toThrow(expect.objectContaining({ code: 'VM_BUSY' }));
    r1();
    r1(); // twice is harmless
    expect(() => reg.openStream(vm, 0)).not.toThrow();
  });

  it('refuses an agent without process support with a rebuild hint', async () => {
    const agent = new ScriptedAgent();
    agent.supportsProcesses = false;
    await expect(new ProcessRegistry().spawn(vmWith(agent), 0, { argv: ['x'] })).rejects.toMatchObject({
      code: 'INVALID_STATE',
      message: expect.stringMatching(/tfc image build/),
    });
  });
});

describe('ProcessRegistry and replaced agent connections', () => {
  it('follows the VM to its new agent connection and forgets the closed one', async () => {
    const first = new ScriptedAgent();
    let agent: ScriptedAgent = first;
    const vm = {
      id: 'vm-000000000002',
      get agent() {
        return agent;
      },
    } as ProcessVm;
    const reg = new ProcessRegistry();
    const rec = await reg.spawn(vm, 0, { argv: ['sleep', '9'] });
    first.closed = true;
    agent = new ScriptedAgent();
    reg.get(vm, 0, rec.pid);
    expect(first.listenerCount).toBe(0);
    agent.emit(out(rec.pid, 'after reconnect'));
    agent.emit(exit(rec.pid));
    expect(rec.after(0).map((e) => e.type)).toEqual(['stdout', 'exit']);
  });
});
