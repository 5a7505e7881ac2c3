/**
 * Least privilege with real VMs (QEMU under TCG, docs/security.md): QEMU
 * runs as a uid of its own from the configured range, inside its seccomp
 * sandbox; golden snapshot files cannot be written by a clone's uid; a
 * clone still restores and runs commands; two VMs never share a uid; the
 * data dir, database and console logs are private. Everything made is
 * removed after the file, also on failure.
 */
import { chownSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/index.js';
import { runCommand } from '../../src/process/index.js';
import { composeRuntime, type Runtime } from '../../src/runtime/compose.js';
import { uidLeaseDir } from '../../src/security/index.js';
import type { Vm } from '../../src/vm/index.js';
import { assertNothingLeft, testDataDir } from '../helpers.js';

const isRoot = process.getuid?.() === 0;

function status(pid: number): { uids: number[]; gids: number[]; seccomp: number; noNewPrivs: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => (new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(text)?.[1] ?? '').trim().split(/\s+/).map(Number);
  return { uids: field('Uid'), gids: field('Gid'), seccomp: field('Seccomp')[0], noNewPrivs: field('NoNewPrivs')[0] };
}

/**
 * Whether `uid` may open `path` for writing, asked of the kernel as that
 * uid. The probe starts in the file's directory and names it relatively, so
 * only the file's own permissions decide (not the 0700 data dir above it,
 * which a process that already holds a descriptor to the directory, like
 * QEMU in its run dir, does not need to pass).
 */
async function writableBy(uid: number, path: string): Promise<boolean> {
  const r = await runCommand('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', 'truncate', '--no-create', '-s', '+0', basename(path)], {
    cwd: dirname(path),
    allowFailure: true,
    timeoutMs: 10_000,
  });
  return r.code === 0;
}

describe.skipIf(!isRoot)('least privilege (real QEMU)', () => {
  let runtime: Runtime;
  let config: Config;
  const vms: Vm[] = [];

  beforeAll(async () => {
    const dataDir = testDataDir();
    config = loadConfig({ env: { TFC_DATA_DIR: dataDir }, cwd: dataDir }).config;
    runtime = await composeRuntime(config, { networking: false });
  });

  afterAll(async () => {
    await runtime?.close('test finished');
    await assertNothingLeft(testDataDir());
  });

  it('a cold-booted QEMU runs as a uid of the range, with seccomp filtering, and still serves the agent', async () => {
    const vm = await runtime.service.create({ profile: config.profiles.minimal });
    vms.push(vm);
    const s = status(vm.pid!);
    const { uidRangeStart, uidCount } = config.security;
    expect(new Set(s.uids).size).toBe(1); // real, effective, saved, fs: all dropped
    expect(s.uids[0]).toBeGreaterThanOrEqual(uidRangeStart);
    expect(s.uids[0]).toBeLessThan(uidRangeStart + uidCount);
    expect(s.gids[0]).toBe(s.uids[0]);
    expect(s.seccomp).toBe(2);
    expect(s.noNewPrivs).toBe(1);
    const r = await vm.exec({ argv: ['echo', 'still here'] });
    expect(r.stdout.toString()).toBe('still here\n');
  });

  it('clones restore and run as distinct uids, and cannot write their golden snapshot', async () => {
    const profile = config.profiles.minimal;
    const snapshot = await runtime.snapshots.ensure(profile);
    const a = await runtime.snapshots.clone(profile);
    vms.push(a);
    const b = await runtime.snapshots.clone(profile);
    vms.push(b);
    const uids = vms.map((vm) => status(vm.pid!).uids[0]);
    expect(new Set(uids).size).toBe(vms.length);
    for (const clone of [a, b]) {
      expect(status(clone.pid!).seccomp).toBe(2);
      const r = await clone.exec({ argv: ['sh', '-c', 'echo $((6 * 7))'] });
      expect(r.stdout.toString()).toBe('42\n');
    }
    for (const path of [snapshot.files.memoryPath, snapshot.files.statePath]) {
      const st = statSync(path);
      expect({ path, uid: st.uid, mode: (st.mode & 0o777).toString(8) }).toEqual({ path, uid: 0, mode: '444' });
      expect(await writableBy(status(a.pid!).uids[0], path)).toBe(false);
    }
    // The probe can say yes: a file the clone's uid owns, in its run dir, is writable by it.
    const own = join(runtime.layout.runVms, a.id, 'probe');
    writeFileSync(own, '');
    chownSync(own, status(a.pid!).uids[0], status(a.pid!).uids[0]);
    expect(await writableBy(status(a.pid!).uids[0], own)).toBe(true);
    rmSync(own, { force: true });
  });

  it('keeps the data dir, the database and console logs private', () => {
    const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
    expect(mode(runtime.layout.root)).toBe('700');
    expect(mode(runtime.layout.database)).toBe('600');
    for (const vm of vms) expect(mode(vm.consoleLogPath)).toBe('600');
  });

  it('frees each uid when its VM goes', async () => {
    const uids = vms.map((vm) => status(vm.pid!).uids[0]);
    const leased = () => readdirSync(uidLeaseDir(runtime.layout.root)).map(Number);
    expect(leased()).toEqual(expect.arrayContaining(uids));
    for (const vm of vms.splice(0)) await runtime.service.destroy(vm, 'test done');
    expect(leased().filter((u) => uids.includes(u))).toEqual([]);
  });
});
