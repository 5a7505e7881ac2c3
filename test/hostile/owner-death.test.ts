/**
 * No VMM outlives its owner, also when the owner is SIGKILLed and the VMM
 * has dropped to a uid of its own (docs/security.md): the kernel clears a
 * parent-death signal on a uid change, so src/process keeps a root guard
 * between tfc and the VMM that forwards it. Uses the built CLI (dist/, run
 * `npm run build` first) and a scratch data dir whose images are the test
 * image; kills and removes everything it made, also on failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO, scratchDir, testDataDir, TFC_BIN } from '../helpers.js';

const isRoot = process.getuid?.() === 0;
/** The guard forwards SIGTERM and SIGKILLs 1 s later; the rest is slack for a loaded 2-core host. */
const GONE_WITHIN_MS = 5000;

function readProc(pid: number, file: string): string | null {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return null;
  }
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function cmdline(pid: number): string[] {
  return (readProc(pid, 'cmdline') ?? '').split('\0').filter(Boolean);
}

/** Live (not zombie) processes whose command line contains `marker`. */
function processesMentioning(marker: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => pid !== process.pid && cmdline(pid).some((arg) => arg.includes(marker)))
    .filter((pid) => !/^State:\s+Z/m.test(readProc(pid, 'status') ?? 'State: Z'));
}

function childrenOf(pid: number): number[] {
  return (readProc(pid, `task/${pid}/children`) ?? '').split(/\s+/).filter(Boolean).map(Number);
}

function uidOf(pid: number): number | null {
  const m = /^Uid:\s+(\d+)/m.exec(readProc(pid, 'status') ?? '');
  return m ? Number(m[1]) : null;
}

async function until<T>(what: string, timeoutMs: number, probe: () => T | null | undefined | false): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

describe.skipIf(!isRoot)('a VMM dies with its SIGKILLed owner (privileges dropped)', () => {
  const owners: ChildProcess[] = [];
  const markers: string[] = [];
  const scratches: Array<{ remove(): void }> = [];

  afterEach(async () => {
    for (const owner of owners.splice(0)) owner.kill('SIGKILL');
    // Whatever survived (a failing run) goes here, not to the next test.
    for (const marker of markers.splice(0)) killAll(processesMentioning(marker));
    await new Promise((r) => setTimeout(r, 200));
    for (const s of scratches.splice(0)) s.remove();
  });

  it('tfc vm run killed with SIGKILL: its QEMU (running as the VM uid) and the guard are gone within seconds', async () => {
    const scratch = scratchDir('tfc-ownerdeath-');
    scratches.push(scratch);
    // The scratch data dir borrows the test image (read-only) and keeps its
    // own database, run dirs and uid leases, so what the killed tfc leaves
    // behind never shows up in the shared test data dir.
    symlinkSync(join(testDataDir(), 'images'), join(scratch.path, 'images'));
    const owner = spawn(process.execPath, [TFC_BIN, 'vm', 'run', '--timeout-ms', '0', '--', 'sleep', '600'], {
      cwd: REPO,
      env: { ...process.env, TFC_DATA_DIR: scratch.path, TFC_CONFIG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    owners.push(owner);
    let stderr = '';
    owner.stderr!.on('data', (c) => (stderr += c));
    owner.stdout!.resume();
    const exited = new Promise<void>((r) => owner.once('exit', () => r()));
    // Mark the data dir first: if anything below throws, cleanup still finds the VMM.
    markers.push(scratch.path);

    // The VMM is the guard's child; the guard is tfc's child.
    const qemu = await until('QEMU to start', 120_000, () => {
      for (const guard of childrenOf(owner.pid!)) {
        const pid = childrenOf(guard).find((c) => cmdline(c).some((a) => a.endsWith('qemu-system-x86_64')));
        if (pid) return { pid, guard };
      }
      return null;
    });
    const vmId = /^tfc-(.+)$/.exec(cmdline(qemu.pid)[cmdline(qemu.pid).indexOf('-name') + 1] ?? '')?.[1];
    expect(vmId).toMatch(/^vm-/);
    markers.push(vmId!);
    expect(cmdline(qemu.guard)[0]).toMatch(/timeout$/);
    // The command runs in the guest: the VM is fully up, and QEMU has
    // dropped to its own uid, which is what clears a parent-death signal.
    const consoleLog = join(scratch.path, 'logs', `${vmId}.console.log`);
    await until('the guest agent', 150_000, () => /tfc-agent: ready/.test(readFileSafe(consoleLog)) || owner.exitCode !== null);
    expect(owner.exitCode, `tfc exited early:\n${stderr}`).toBeNull();
    expect(uidOf(qemu.pid)).not.toBe(0);
    expect(processesMentioning(vmId!).sort()).toEqual([qemu.pid, qemu.guard].sort());

    owner.kill('SIGKILL');
    await exited;
    await until(`QEMU pid ${qemu.pid} of ${vmId} to exit`, GONE_WITHIN_MS, () => processesMentioning(vmId!).length === 0);
    expect(processesMentioning(scratch.path)).toEqual([]);
  });

  it('a program that changes uid dies with its owner (the guard alone, no VM)', async () => {
    const marker = `owner-death-${process.pid}-${Date.now()}`;
    markers.push(marker);
    // The owner imports the built supervision module, starts a program that
    // drops to nobody (as QEMU's -runas does), prints its pid and waits.
    const script = `
      const { spawnSupervised } = await import(${JSON.stringify(join(REPO, 'dist', 'process', 'index.js'))});
      const child = await spawnSupervised('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'sh', '-c', 'sleep 600; : ${marker}']);
      console.log(child.pid);
      setInterval(() => {}, 1000);`;
    const owner = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    owners.push(owner);
    let stdout = '';
    owner.stdout!.on('data', (c) => (stdout += c));
    const pid = Number(await until('the program pid', 30_000, () => /^\d+\n/.exec(stdout)?.[0]));
    await until('the uid drop', 10_000, () => uidOf(pid) === 65534);
    expect(processesMentioning(marker)).toContain(pid);

    owner.kill('SIGKILL');
    await until(`pid ${pid} to exit`, GONE_WITHIN_MS, () => processesMentioning(marker).length === 0);
  });
});
