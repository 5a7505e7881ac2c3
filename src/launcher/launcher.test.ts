import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TfcError } from '../errors/index.js';
import { defaultConfig, loadConfig } from '../config/index.js';
import { findExecutable, runCommand } from '../process/index.js';
import { ensureVmmExec, launcherArgv, needsLauncher, reniceProcess, vmmCacheDir, VmmExec, vmmExecPath, vmmExecSettingsFrom } from './index.js';

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'tfc-launcher-'));
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** Field 19 of /proc/PID/stat (nice); comm may hold spaces, so count from the last ')'. */
function niceOf(stat: string): number {
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

describe('launcher argv', () => {
  it('puts the settings before -- and the absolute program with its args after', () => {
    expect(launcherArgv('/c/tfc-vmm-exec-x', { nice: 10, disableThp: true }, '/usr/bin/qemu-system-x86_64', ['-S', '-name', 'a b'])).toEqual([
      '/c/tfc-vmm-exec-x',
      ['--nice', '10', '--no-thp', '--', '/usr/bin/qemu-system-x86_64', '-S', '-name', 'a b'],
    ]);
    expect(launcherArgv('/l', { nice: 0, disableThp: true }, '/bin/q', [])).toEqual(['/l', ['--no-thp', '--', '/bin/q']]);
    expect(launcherArgv('/l', { nice: 5, disableThp: false }, '/bin/q', ['x'])).toEqual(['/l', ['--nice', '5', '--', '/bin/q', 'x']]);
    expect(() => launcherArgv('/l', { nice: 5, disableThp: false }, 'qemu', [])).toThrow(/absolute/);
  });

  it('is used only when a setting changes something', () => {
    expect(needsLauncher({ nice: 0, disableThp: false })).toBe(false);
    expect(needsLauncher({ nice: 1, disableThp: false })).toBe(true);
    expect(needsLauncher({ nice: 0, disableThp: true })).toBe(true);
  });

  it('takes its settings from the config: nice 10 and THP off for QEMU by default, nice only for Firecracker', () => {
    const config = defaultConfig({ env: { HOME: '/h' }, uid: 1000 });
    expect(vmmExecSettingsFrom(config)).toEqual({ qemu: { nice: 10, disableThp: true }, firecracker: { nice: 10, disableThp: false } });
    config.vmm.nice = 0;
    config.vmm.qemu.thp = 'inherit';
    expect(vmmExecSettingsFrom(config).qemu).toEqual({ nice: 0, disableThp: false });
    expect(vmmCacheDir('/d')).toBe('/d/cache/vmm');
  });

  it('starts the program as it is when nothing is asked for, without building anything', async () => {
    const exec = new VmmExec({ nice: 0, disableThp: false }, join(scratch, 'unused'));
    expect(await exec.command('qemu-system-x86_64', ['-S'])).toEqual({ file: 'qemu-system-x86_64', args: ['-S'], reniceTo: null });
    expect(existsSync(join(scratch, 'unused'))).toBe(false);
  });

  it('falls back to renicing after spawn, with one warning, when it has nowhere to build the launcher', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => {
      if (w.code === 'TFC_VMM_LAUNCHER') warnings.push(w.message);
    };
    process.on('warning', onWarning);
    try {
      const exec = new VmmExec({ nice: 10, disableThp: true }, null);
      expect(await exec.command('sh', ['-c', 'true'])).toEqual({ file: 'sh', args: ['-c', 'true'], reniceTo: 10 });
      await new VmmExec({ nice: 3, disableThp: false }, null).command('sh', []);
      await new Promise((r) => setImmediate(r));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/no data dir/);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('config keys vmm.nice and vmm.qemu.thp', () => {
  function loadToml(toml: string) {
    const dir = mkdtempSync(join(scratch, 'cfg-'));
    writeFileSync(join(dir, 'tfc.toml'), toml);
    return loadConfig({ cwd: dir, uid: 1000, env: { HOME: '/home/u' }, configPath: join(dir, 'tfc.toml') }).config;
  }
  function problem(toml: string): string {
    try {
      loadToml(toml);
    } catch (err) {
      if (err instanceof TfcError) return err.message;
      throw err;
    }
    throw new Error('expected the config to be rejected');
  }

  it('accepts 0..19 and inherit/never', () => {
    const config = loadToml('[vmm]\nnice = 0\n[vmm.qemu]\nthp = "inherit"\n');
    expect(config.vmm.nice).toBe(0);
    expect(config.vmm.qemu.thp).toBe('inherit');
    expect(loadToml('[vmm]\nnice = 19\n').vmm.nice).toBe(19);
  });

  it('rejects values outside them, naming the key', () => {
    expect(problem('[vmm]\nnice = 20\n')).toMatch(/vmm\.nice/);
    expect(problem('[vmm]\nnice = -1\n')).toMatch(/vmm\.nice/);
    expect(problem('[vmm]\nnice = 2.5\n')).toMatch(/vmm\.nice/);
    expect(problem('[vmm.qemu]\nthp = "always"\n')).toMatch(/vmm\.qemu\.thp/);
  });
});

const gcc = findExecutable('gcc');
describe.skipIf(!gcc)('tfc-vmm-exec, built with gcc', () => {
  let cacheDir: string;
  let launcher: string;
  beforeAll(async () => {
    cacheDir = join(scratch, 'cache');
    const built = await ensureVmmExec(cacheDir);
    if (built.kind !== 'launcher') throw new Error(`launcher not built: ${built.reason}`);
    launcher = built.path;
  }, 120_000);

  it('is cached by its source hash and found again without a build', async () => {
    expect(launcher).toBe(vmmExecPath(cacheDir));
    const before = statSync(launcher).mtimeMs;
    expect(await ensureVmmExec(cacheDir, { force: true })).toEqual({ kind: 'launcher', path: launcher });
    expect(statSync(launcher).mtimeMs).toBe(before);
  });

  it('is what a driver spawns, with the program resolved in PATH (the launcher does no PATH search)', async () => {
    const exec = new VmmExec({ nice: 10, disableThp: true }, cacheDir);
    expect(await exec.command('sh', ['-c', 'true'])).toEqual({
      file: launcher,
      args: ['--nice', '10', '--no-thp', '--', findExecutable('sh'), '-c', 'true'],
      reniceTo: null,
    });
  });

  it('runs the program in place with the nice value and THP disabled', async () => {
    const [file, args] = launcherArgv(launcher, { nice: 10, disableThp: true }, '/bin/sh', ['-c', 'echo $$; cat /proc/self/status /proc/$$/stat']);
    const out = (await runCommand(file, args, { timeoutMs: 30_000 })).stdout.toString();
    expect(out).toMatch(/^THP_enabled:\s+0$/m);
    const stat = out.split('\n').find((l) => l.startsWith(`${out.split('\n')[0]} (`))!;
    expect(niceOf(stat)).toBe(10);
    // Without the settings: THP as the host has it (1 unless THP is "never" host-wide), nice unchanged.
    const plain = (await runCommand(launcher, ['--', '/bin/sh', '-c', 'cat /proc/self/status'], { timeoutMs: 30_000 })).stdout.toString();
    const hostThp = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').includes('[never]') ? 0 : 1;
    expect(plain).toMatch(new RegExp(`^THP_enabled:\\s+${hostThp}$`, 'm'));
  });

  it('exits 127 for a missing program and 126 for bad arguments, saying why', async () => {
    const missing = await runCommand(launcher, ['--nice', '10', '--', join(scratch, 'no-such-vmm')], { allowFailure: true });
    expect(missing.code).toBe(127);
    expect(missing.stderr.toString()).toMatch(/cannot execute .*no-such-vmm: No such file/);
    for (const args of [
      ['--nice', '20', '--', '/bin/true'],
      ['--', 'true'],
      ['--frobnicate', '--', '/bin/true'],
      ['--nice', '5'],
    ]) {
      const r = await runCommand(launcher, args, { allowFailure: true });
      expect(r.code, args.join(' ')).toBe(126);
      expect(r.stderr.toString()).toMatch(/^tfc-vmm-exec: /);
    }
  });

  it('is rebuilt when the cached file is writable by others (it runs with our privileges)', async () => {
    const dir = join(scratch, 'untrusted');
    const first = await ensureVmmExec(dir);
    expect(first.kind).toBe('launcher');
    const path = vmmExecPath(dir);
    chmodSync(path, 0o777);
    writeFileSync(path, '#!/bin/sh\nexit 0\n');
    const again = await ensureVmmExec(dir, { force: true });
    expect(again).toEqual({ kind: 'launcher', path });
    expect(statSync(path).mode & 0o777).toBe(0o755);
    expect(readFileSync(path).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
  }, 120_000);

  it('reports a recent failed build instead of running gcc again in every process; force retries', async () => {
    const dir = join(scratch, 'failed');
    const path = vmmExecPath(dir);
    mkdirSync(dir);
    writeFileSync(`${path}.failed`, JSON.stringify({ at: Date.now(), reason: 'gcc said no' }));
    expect(await ensureVmmExec(dir)).toEqual({ kind: 'direct', reason: 'gcc said no' });
    expect(existsSync(path)).toBe(false);
    expect(await ensureVmmExec(dir, { force: true })).toEqual({ kind: 'launcher', path });
    expect(existsSync(`${path}.failed`)).toBe(false);
  }, 120_000);
});

describe('reniceProcess (the fallback without the launcher)', () => {
  it('sets every thread of a running process and never lowers a higher value', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      await new Promise((r) => setTimeout(r, 300)); // node has started its worker threads
      const pid = child.pid!;
      const threads = () => readdirSync(`/proc/${pid}/task`).map((tid) => niceOf(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')));
      expect(threads().length).toBeGreaterThan(1);
      expect(reniceProcess(pid, 7)).toBeGreaterThan(1);
      // As the drivers do: a second pass catches a thread made during the first by one not yet reniced.
      reniceProcess(pid, 7);
      expect(new Set(threads())).toEqual(new Set([7]));
      expect(reniceProcess(pid, 4)).toBe(0);
      expect(new Set(threads())).toEqual(new Set([7]));
    } finally {
      child.kill('SIGKILL');
    }
    expect(reniceProcess(2 ** 22 + 1, 5)).toBe(0); // no such process
  });
});
