import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePids } from './children.js';
import { liveChildren, runCommand, spawnSupervised } from './index.js';
import { ownerDeathMode } from './supervise.js';

function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}

describe('runCommand', () => {
  it('collects output and exit code', async () => {
    const r = await runCommand('sh', ['-c', 'echo out; echo err >&2; exit 3'], { allowFailure: true });
    expect(r.code).toBe(3);
    expect(r.stdout.toString()).toBe('out\n');
    expect(r.stderr.toString()).toBe('err\n');
  });
  it('throws a clear error naming a missing program and the hint', async () => {
    await expect(runCommand('no-such-program-xyz', [], { hint: 'apt-get install xyz' })).rejects.toThrow(
      /program not found: no-such-program-xyz; apt-get install xyz/,
    );
  });
  it('throws on non-zero exit with the stderr tail', async () => {
    await expect(runCommand('sh', ['-c', 'echo boom >&2; exit 2'])).rejects.toThrow(/exit code 2: boom/);
  });
  it('kills on timeout', async () => {
    await expect(runCommand('sleep', ['5'], { timeoutMs: 100 })).rejects.toThrow(/timed out after 100 ms/);
  });
  it('passes argv without a shell', async () => {
    const r = await runCommand('printf', ['%s', '$HOME; rm -rf /']);
    expect(r.stdout.toString()).toBe('$HOME; rm -rf /');
  });
});

describe('spawnSupervised', () => {
  it('tracks a child until it exits and memoises wait()', async () => {
    const child = await spawnSupervised('sh', ['-c', 'exit 4']);
    const a = await child.wait();
    const b = await child.wait();
    expect(a).toEqual({ code: 4, signal: null });
    expect(b).toBe(a);
    expect(liveChildren().has(child)).toBe(false);
  });
  it('terminate escalates to SIGKILL after the grace period', async () => {
    const child = await spawnSupervised('sh', ['-c', 'trap "" TERM; echo ready; sleep 10']);
    expect(liveChildren().has(child)).toBe(true);
    // Wait until the trap is installed, or SIGTERM would win the race.
    await new Promise((res) => child.stdout!.once('data', res));
    const started = Date.now();
    const info = await child.terminate(200);
    expect(info.signal).toBe('SIGKILL');
    expect(Date.now() - started).toBeLessThan(5000);
  });
  it('rejects with a clear error when the binary is missing', async () => {
    await expect(spawnSupervised('/nonexistent/qemu', [])).rejects.toMatchObject({ code: 'VMM_SPAWN_FAILED' });
  });
});

// The guard (setpriv + coreutils timeout) must be invisible to callers:
// same pid semantics, same exit statuses, same signals.
describe.skipIf(ownerDeathMode() !== 'guard')('spawnSupervised behind its guard', () => {
  it("reports the program's own pid, child of a timeout guard", async () => {
    const child = await spawnSupervised('sleep', ['30']);
    try {
      expect(child.guardPid).not.toBeNull();
      expect(child.pid).not.toBe(child.guardPid);
      expect(cmdline(child.pid)).toEqual([expect.stringMatching(/sleep$/), '30']);
      expect(cmdline(child.guardPid!)).toEqual(expect.arrayContaining([expect.stringMatching(/timeout$/), '0']));
    } finally {
      await child.terminate(1000);
    }
  });
  it('passes exit codes and killing signals through', async () => {
    expect(await (await spawnSupervised('sh', ['-c', 'exit 4'])).wait()).toEqual({ code: 4, signal: null });
    expect(await (await spawnSupervised('sh', ['-c', 'kill -SEGV $$'])).wait()).toEqual({ code: null, signal: 'SIGSEGV' });
    const child = await spawnSupervised('sleep', ['30']);
    expect(await child.terminate(5000)).toEqual({ code: null, signal: 'SIGTERM' });
  });
  it('SIGKILL takes the program and its guard', async () => {
    const child = await spawnSupervised('sleep', ['30']);
    const { pid, guardPid } = child;
    child.kill('SIGKILL');
    expect(await child.wait()).toEqual({ code: null, signal: 'SIGKILL' });
    // The guard was reaped (wait() resolved); the program was its child, so reaped too.
    expect(existsSync(`/proc/${guardPid}`)).toBe(false);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
  });
  it('kills the program when its guard is killed on its own (no orphan left running)', async () => {
    const child = await spawnSupervised('sleep', ['30']);
    process.kill(child.guardPid!, 'SIGKILL');
    expect(await child.wait()).toEqual({ code: null, signal: 'SIGKILL' });
    // Orphaned, the program is reaped by init: dead means gone or a zombie.
    const state = () => (existsSync(`/proc/${child.pid}`) ? /^State:\s+(\S)/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] : 'gone');
    for (let i = 0; i < 100 && state() !== 'gone' && state() !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20));
    expect(['gone', 'Z']).toContain(state());
  });
  it('reports a program that cannot be executed as exit 126, like a shell', async () => {
    // Passes the PATH check (a directory is "executable") but cannot be run.
    const child = await spawnSupervised('/proc', []);
    expect((await child.wait()).code).toBe(126);
  });
});

describe('parsePids', () => {
  it('reads a /proc children list', () => {
    expect(parsePids('123 456 \n')).toEqual([123, 456]);
    expect(parsePids('')).toEqual([]);
  });
});
