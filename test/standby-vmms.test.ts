import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { SnapshotManager, type GoldenSnapshot } from '../src/snapshot/index.js';
import { dataLayout, openDatabase, VmRepository, type Db } from '../src/store/index.js';
import { VmService, type Vm, type VmProfile } from '../src/vm/index.js';
import { createDrivers } from '../src/vmm/index.js';
import { UidLeases, uidLeaseDir } from '../src/security/index.js';
import { assertNothingLeft, testDataDir, until } from './helpers.js';

/** Pss of one process in bytes (/proc/PID/smaps_rollup). */
function pssOf(pid: number): number {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  return Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? NaN) * 1024;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(1)} ms`;

// Standby VMMs on real QEMU (TCG), in-process: a restore adopts a QEMU that
// was started ahead of time, listening for its state with the golden memory file mapped privately.
describe('standby VMMs (real QEMU)', () => {
  const dataDir = testDataDir();
  const layout = dataLayout(dataDir);
  let db: Db;
  /** Keeps standbys (as the daemon does). */
  let service: VmService;
  /** Spawns a VMM per restore (as a one-shot process does). */
  let plain: VmService;
  let profile: VmProfile;
  let golden: GoldenSnapshot;
  /** Console logs there before this file ran (the data dir is shared by the integration tests). */
  let logsBefore: Set<string>;

  const restoreWith = (s: VmService) => s.restore({ profile, snapshot: golden.files, image: golden.image! });
  const ready = () => service.standbyStatus()[0]?.ready ?? 0;
  const echo = async (vm: Vm, text: string) => (await vm.exec({ argv: ['echo', text], timeoutMs: 20_000 })).stdout.toString().trim();

  beforeAll(async () => {
    logsBefore = new Set(existsSync(layout.logs) ? readdirSync(layout.logs) : []);
    const { config } = loadConfig({ env: { TFC_DATA_DIR: dataDir }, cwd: dataDir });
    profile = { ...config.profiles.minimal, standbyVmms: 1 };
    db = openDatabase(layout.database);
    const repo = new VmRepository(db);
    service = new VmService({ layout, repo, drivers: createDrivers(config), stopTimeoutMs: 3000, standbyVmms: true });
    plain = new VmService({ layout, repo, drivers: createDrivers(config), stopTimeoutMs: 3000 });
    golden = await new SnapshotManager(layout, service).ensure(profile);
  }, 300_000);

  afterAll(async () => {
    await service?.stopAll('test finished');
    await plain?.stopAll('test finished');
    db?.close();
  });

  it('a restore through a standby skips the spawn and works; a second restore right after works too', async () => {
    const first = await restoreWith(service);
    expect(first.fromStandby).toBe(false);
    await until('a standby is waiting', async () => ready() === 1);
    const [waiting] = service.standbyStatus();
    const standbyPid = waiting!.pids[0]!;
    // Waiting for its snapshot on the golden memory file, mapped privately.
    const argv = readFileSync(`/proc/${standbyPid}/cmdline`, 'utf8').split('\0');
    expect(argv[argv.indexOf('-incoming') + 1]).toBe('unix:migrate-in.sock');
    expect(argv.join(' ')).toContain(`mem-path=${golden.files.memoryPath},share=off`);

    const vm = await restoreWith(service);
    expect(vm.fromStandby).toBe(true);
    expect(vm.pid).toBe(standbyPid);
    const spawn = vm.bootPhases.find((p) => p.name === 'spawn_vmm')!;
    expect(spawn.ms).toBeLessThan(5);
    expect(vm.bootPhases.map((p) => p.name)).toEqual(['spawn_vmm', 'load_snapshot', 'resume', 'agent_ready', 'refresh_guest']);
    expect(await echo(vm, 'from a standby')).toBe('from a standby');

    // Right after: the refill may still be starting, so this one may spawn its own; either way it works.
    const second = await restoreWith(service);
    expect(await echo(second, 'second')).toBe('second');
    expect(await echo(vm, 'still here')).toBe('still here');
    console.log(
      `standby restore phases: ${vm.bootPhases.map((p) => `${p.name} ${ms(p.ms)}`).join(', ')}; ` +
        `next restore right after: ${second.fromStandby ? 'took a refilled standby' : 'spawned its own VMM'} (${second.bootPhases.map((p) => `${p.name} ${ms(p.ms)}`).join(', ')})`,
    );
    for (const v of [first, vm, second]) await service.destroy(v);
  });

  it('restore to agent ready with and without a standby, interleaved in one run', async () => {
    const rounds = 7;
    const withStandby: number[] = [];
    const without: number[] = [];
    const phasesWith: number[] = [];
    const phasesWithout: number[] = [];
    const spawnWithout: number[] = [];
    const total = (vm: Vm) => vm.bootPhases.reduce((sum, p) => sum + p.ms, 0);
    const byPhase = { with: new Map<string, number[]>(), without: new Map<string, number[]>() };
    const note = (into: Map<string, number[]>, vm: Vm) => vm.bootPhases.forEach((p) => into.set(p.name, [...(into.get(p.name) ?? []), p.ms]));
    const phaseMedians = (from: Map<string, number[]>) => [...from].map(([name, xs]) => `${name} ${ms(median(xs))}`).join(', ');
    let standbyPss = 0;
    for (let i = 0; i < rounds; i++) {
      // Measured only while no standby is being started (it would compete for the CPU).
      await until('a standby is waiting', async () => ready() === 1 && !service.standbyStatus()[0]!.starting);
      standbyPss = Math.max(standbyPss, pssOf(service.standbyStatus()[0]!.pids[0]!));
      let started = performance.now();
      const a = await restoreWith(service);
      withStandby.push(performance.now() - started);
      phasesWith.push(total(a));
      note(byPhase.with, a);
      expect(a.fromStandby).toBe(true);
      await service.destroy(a);
      await until('the standby is refilled', async () => ready() === 1 && !service.standbyStatus()[0]!.starting);
      started = performance.now();
      const b = await restoreWith(plain);
      without.push(performance.now() - started);
      phasesWithout.push(total(b));
      note(byPhase.without, b);
      spawnWithout.push(b.bootPhases.find((p) => p.name === 'spawn_vmm')!.ms);
      expect(b.fromStandby).toBe(false);
      await plain.destroy(b);
    }
    const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
    console.log(
      `restore to agent ready (${rounds} interleaved rounds, medians): with a standby ${ms(median(withStandby))} [${list(withStandby)}], ` +
        `without ${ms(median(without))} [${list(without)}], ratio ${(median(withStandby) / median(without)).toFixed(2)}; ` +
        `sum of restore phases with ${ms(median(phasesWith))} [${list(phasesWith)}], without ${ms(median(phasesWithout))} [${list(phasesWithout)}] ` +
        `(spawn_vmm without: ${ms(median(spawnWithout))}); a waiting standby QEMU: Pss ${(standbyPss / 1024 ** 2).toFixed(1)} MiB; ` +
        `phase medians with: ${phaseMedians(byPhase.with)}; without: ${phaseMedians(byPhase.without)}`,
    );
    expect(median(withStandby)).toBeLessThan(median(without));
  });

  it('stopAll stops the waiting standbys and leaves nothing behind', async () => {
    await until('a standby is waiting', async () => ready() === 1);
    const { pids } = service.standbyStatus()[0]!;
    await service.stopAll('test finished');
    expect(service.standbyStatus()).toEqual([]);
    await until(
      'the standby QEMUs are gone',
      async () => pids.every((pid) => !existsSync(`/proc/${pid}/cmdline`) || readFileSync(`/proc/${pid}/cmdline`).length === 0),
      10_000,
    );
    await assertNothingLeft(dataDir);
    // uid leases (security.drop_privileges) of this process's VMMs and standbys are released.
    const leases = new UidLeases(uidLeaseDir(dataDir), { start: 1, count: 1 }).leases();
    expect(leases.filter((l) => l.pid === process.pid)).toEqual([]);
    // No console log of a standby that never became a VM is left.
    const known = new Set(new VmRepository(db).list().map((v) => v.id));
    const made = readdirSync(layout.logs).filter((f) => !logsBefore.has(f));
    expect(made.filter((f) => !known.has(f.replace(/\.console\.log(\.1)?$/, '')))).toEqual([]);
  });
});
