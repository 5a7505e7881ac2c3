import { copyFileSync, existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { VmmExitedError } from '../errors/index.js';
import { resolveImage, type BuiltImage } from '../guest/image-store.js';
import type { DataLayout } from '../store/layout.js';
import type { VmRepository } from '../store/vm-repository.js';
import type { FakeDriver } from '../testing/fake-driver.js';
import { canRunFakeVms, compileFakeGuest, openFakeRuntime, type FakeRuntime } from '../testing/fake-runtime.js';
import type { SnapshotFiles, VmmDriver } from '../vmm/driver.js';
import { standbyKey, type StandbyBootOptions } from './standby.js';
import { VmService, type VmProfile } from './vm-service.js';

// Standby VMMs through the real VmService, Vm and step code, with the fake
// VMM (the real agent on a Unix socket): what a restore takes, what is
// refilled, what is dropped, and that nothing is left behind.

if (!canRunFakeVms) console.warn('standby VMM tests skipped: gcc is not installed (apt-get install gcc libc6-dev)');

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`not reached in ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.skipIf(!canRunFakeVms)('standby VMMs with a fake VMM', () => {
  let guest: Awaited<ReturnType<typeof compileFakeGuest>>;
  let rt: FakeRuntime;
  let layout: DataLayout;
  let repo: VmRepository;
  let driver: FakeDriver;
  let service: VmService;
  let profile: VmProfile;
  let image: BuiltImage;
  let files: SnapshotFiles;
  let problems: string[];

  beforeAll(async () => {
    guest = await compileFakeGuest();
  }, 120_000);
  afterAll(() => guest?.remove());

  /** A service with standbys on, and a golden snapshot of the fake profile. */
  async function setUp(options: { standbyVmms?: number; idleMs?: number; on?: boolean } = {}): Promise<void> {
    service = new VmService({
      layout,
      repo,
      drivers: { qemu: driver },
      stopTimeoutMs: 1000,
      ...(options.on === false
        ? {}
        : { standbyVmms: { retryMs: 20, onProblem: (m) => problems.push(m), ...(options.idleMs ? { idleMs: options.idleMs } : {}) } }),
    });
    profile = { ...rt.profile, standbyVmms: options.standbyVmms ?? 1 };
    image = resolveImage(layout, profile.image);
    const template = await service.create({ profile });
    await template.pause();
    files = { memoryPath: join(rt.dir, 'memory'), statePath: join(rt.dir, 'state') };
    await template.createSnapshot(files);
    await service.destroy(template);
  }

  const restore = (p: VmProfile = profile) => service.restore({ profile: p, snapshot: files, image });
  const ready = () => service.standbyStatus()[0]?.ready ?? 0;
  const alive = () => driver.instances.filter((i) => !i.exited);

  beforeEach(() => {
    rt = openFakeRuntime(guest.agentBinary);
    ({ layout, repo, driver } = rt);
    problems = [];
  });

  afterEach(async () => {
    await service?.stopAll('test finished');
    await rt.close();
  });

  it('a restore takes the waiting VMM (spawn_vmm about 0 ms, no prepare), the standby is refilled, and the VM works', async () => {
    await setUp();
    const first = await restore();
    expect(first.fromStandby).toBe(false);
    expect(first.bootPhases.map((p) => p.name)).toEqual(['prepare', 'spawn_vmm', 'load_snapshot', 'resume', 'agent_ready', 'refresh_guest']);
    await until('a standby is ready', () => ready() === 1);
    const [status] = service.standbyStatus();
    expect(status).toMatchObject({ snapshot: files.memoryPath, wanted: 1, ready: 1, failuresInARow: 0 });
    const waiting = driver.instances.at(-1)!;

    const clone = await restore();
    expect(clone.fromStandby).toBe(true);
    expect(clone.pid).toBe(waiting.pid);
    expect(clone.bootPhases.map((p) => p.name)).toEqual(['spawn_vmm', 'load_snapshot', 'resume', 'agent_ready', 'refresh_guest']);
    expect(clone.bootPhases[0]!.ms).toBeLessThan(5);
    expect(repo.get(clone.id)).toMatchObject({ state: 'running', pid: waiting.pid });
    expect(repo.transitions(clone.id).map((t) => t.reason)).toContain('restoring from snapshot (standby VMM)');
    expect((await clone.exec({ argv: ['echo', 'from a standby'] })).stdout.toString()).toBe('from a standby\n');
    await until('the standby is refilled', () => ready() === 1);

    // The adopted VM releases what the standby made, like any VM.
    const runDir = join(layout.runVms, clone.id);
    expect(existsSync(runDir)).toBe(true);
    await service.destroy(clone);
    expect(existsSync(runDir)).toBe(false);
    expect(waiting.exited).toBe(true);
    await service.destroy(first);
  });

  it('a standby of a profile with a scratch disk copies the disk ahead of time; the VM gets that copy', async () => {
    service = new VmService({ layout, repo, drivers: { qemu: driver }, stopTimeoutMs: 1000, standbyVmms: { retryMs: 20 } });
    profile = { ...rt.profile, standbyVmms: 1, diskMib: 8 };
    image = resolveImage(layout, profile.image);
    const template = await service.create({ profile });
    await template.pause();
    files = { memoryPath: join(rt.dir, 'memory'), statePath: join(rt.dir, 'state'), scratchDiskPath: join(rt.dir, 'scratch.ext4') };
    await template.createSnapshot(files);
    copyFileSync(template.scratchDiskPath!, files.scratchDiskPath!);
    await service.destroy(template);
    await service.destroy(await restore());
    await until('a standby is ready', () => ready() === 1);
    const [standbyDir] = readdirSync(layout.runVms);
    expect(readdirSync(join(layout.runVms, standbyDir!))).toContain('scratch.ext4');
    const vm = await restore();
    expect(vm.fromStandby).toBe(true);
    expect(vm.id).toBe(standbyDir);
    expect(vm.scratchDiskPath).toBe(join(layout.runVms, standbyDir!, 'scratch.ext4'));
    expect(statSync(vm.scratchDiskPath!).size).toBe(statSync(files.scratchDiskPath!).size);
    await service.destroy(vm);
    expect(existsSync(join(layout.runVms, standbyDir!))).toBe(false);
  });

  it('keeps at most standby_vmms, starting one at a time, and fewer when the profile asks for fewer', async () => {
    await setUp({ standbyVmms: 3 });
    let active = 0;
    let peak = 0;
    const spawn = driver.spawn.bind(driver);
    const vm = await restore();
    driver.spawn = async (...args: Parameters<VmmDriver['spawn']>) => {
      peak = Math.max(peak, ++active);
      try {
        return await spawn(...args);
      } finally {
        active--;
      }
    };
    await until('3 standbys', () => ready() === 3);
    await new Promise((r) => setTimeout(r, 100));
    expect(ready()).toBe(3);
    expect(peak).toBe(1);
    expect(alive()).toHaveLength(4); // the VM and three standbys
    await service.destroy(vm);

    // The same snapshot restored with standby_vmms = 1: the extra standbys stop.
    const one = await restore({ ...profile, standbyVmms: 1 });
    expect(one.fromStandby).toBe(true);
    await until('extras stopped', () => alive().length === 2);
    expect(ready()).toBe(1);
    // standby_vmms = 0 stops them all.
    await service.destroy(await restore({ ...profile, standbyVmms: 0 }));
    await until('all stopped', () => alive().length === 1);
    expect(service.standbyStatus()).toEqual([]);
    await service.destroy(one);
    expect(readdirSync(layout.runVms)).toEqual([]);
  });

  it('a standby whose VMM dies is dropped and replaced', async () => {
    await setUp();
    await service.destroy(await restore());
    await until('a standby is ready', () => ready() === 1);
    const victim = driver.instances.at(-1)!;
    const victimRunDirs = readdirSync(layout.runVms);
    expect(victimRunDirs).toHaveLength(1);
    victim.child.kill('SIGKILL');
    await until('replaced', () => ready() === 1 && driver.instances.at(-1) !== victim);
    expect(service.standbyStatus()[0]!.failuresInARow).toBe(1);
    expect(problems).toEqual([expect.stringMatching(/exited while waiting \(killed by SIGKILL\)/)]);
    expect(existsSync(join(layout.runVms, victimRunDirs[0]!))).toBe(false);
    const clone = await restore();
    expect(clone.fromStandby).toBe(true);
    expect(service.standbyStatus()[0]!.failuresInARow).toBe(0);
    expect((await clone.exec({ argv: ['true'] })).exitCode).toBe(0);
  });

  it('a restore through a standby that fails releases the standby with the VM, and the next restore works', async () => {
    await setUp();
    await service.destroy(await restore());
    await until('a standby is ready', () => ready() === 1);
    const broken = driver.instances.at(-1)!;
    broken.loadSnapshot = async () => {
      throw new VmmExitedError('fake VMM: the snapshot did not load (injected)');
    };
    await expect(restore()).rejects.toMatchObject({ code: 'VMM_EXITED' });
    expect(broken.exited).toBe(true);
    const failed = repo.list().find((v) => v.state === 'failed')!;
    expect(failed.pid).toBe(broken.pid);
    expect(repo.phases(failed.id, 'restore').map((p) => p.name)).toEqual(['spawn_vmm', 'load_snapshot']);
    expect(existsSync(join(layout.runVms, failed.id))).toBe(false);
    await until('refilled', () => ready() === 1);
    const vm = await restore();
    expect(vm.fromStandby).toBe(true);
    expect((await vm.exec({ argv: ['true'] })).exitCode).toBe(0);
  });

  it('a standby that cannot start is retried after a growing pause, leaving nothing behind', async () => {
    await setUp();
    await service.destroy(await restore());
    await until('a standby is ready', () => ready() === 1);
    driver.faults = { spawnFails: true };
    await service.destroy(await restore()); // takes the standby; the refill fails
    await until('two failures', () => service.standbyStatus()[0]!.failuresInARow >= 2);
    expect(service.standbyStatus()[0]!.lastError).toMatch(/could not be started: fake VMM refused to start/);
    expect(readdirSync(layout.runVms)).toEqual([]);
    driver.faults = {};
    await until('a standby once the fault is gone', () => ready() === 1);
  });

  it('stopAll stops every standby and removes their run dirs and console logs; later restores make none', async () => {
    await setUp({ standbyVmms: 2 });
    const vm = await restore();
    await until('2 standbys', () => ready() === 2);
    await service.stopAll('test');
    expect(vm.state).toBe('stopped');
    expect(driver.instances.every((i) => i.exited)).toBe(true);
    expect(readdirSync(layout.runVms)).toEqual([]);
    // Console logs left are VMs' (standbys never became VMs).
    const vmIds = new Set(repo.list().map((v) => v.id));
    expect(readdirSync(layout.logs).filter((f) => !vmIds.has(f.replace(/\.console\.log(\.1)?$/, '')))).toEqual([]);
    expect(service.standbyStatus()).toEqual([]);
    const after = await restore();
    expect(after.fromStandby).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(service.standbyStatus()).toEqual([]);
    expect(alive()).toHaveLength(1);
    await service.destroy(after);
  });

  it('stopAll while a standby is being started waits for it and stops it', async () => {
    await setUp();
    await service.destroy(await restore());
    await until('a standby ready', () => ready() === 1);
    const spawn = driver.spawn.bind(driver);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    driver.spawn = async (...args: Parameters<VmmDriver['spawn']>) => {
      await gate;
      return spawn(...args);
    };
    // The next restore takes the standby; its refill waits in spawn.
    await service.destroy(await restore());
    await until('starting', () => service.standbyStatus()[0]?.starting === true);
    const stopping = service.stopAll('test');
    release();
    await stopping;
    expect(driver.instances.every((i) => i.exited)).toBe(true);
    expect(readdirSync(layout.runVms)).toEqual([]);
  });

  it('a standby of a snapshot made again at the same paths is not used', async () => {
    await setUp();
    await service.destroy(await restore());
    await until('a standby is ready', () => ready() === 1);
    const stale = driver.instances.at(-1)!;
    rmSync(files.memoryPath);
    writeFileSync(files.memoryPath, Buffer.alloc(8192));
    const vm = await restore();
    expect(vm.fromStandby).toBe(false);
    await until('the stale standby stopped', () => stale.exited);
    await until('a fresh one', () => ready() === 1);
    expect((await restore()).fromStandby).toBe(true);
  });

  it('standbys of a snapshot nobody restores stop after idle_ms', async () => {
    await setUp({ idleMs: 300 });
    await service.destroy(await restore());
    await until('a standby is ready', () => ready() === 1);
    await until('idle standbys stopped', () => service.standbyStatus().length === 0, 5000);
    await until('its VMM exited', () => alive().length === 0);
    expect(readdirSync(layout.runVms)).toEqual([]);
  });

  it('without standbyVmms (a one-shot process) a restore starts no standby', async () => {
    await setUp({ on: false });
    await service.destroy(await restore());
    await new Promise((r) => setTimeout(r, 100));
    expect(service.standbyStatus()).toEqual([]);
    expect(alive()).toEqual([]);
  });
});

describe('standbyKey', () => {
  const image = { manifest: { digest: 'd' }, dir: '/img', kernelPath: '/img/vmlinux', initrdPath: '/img/initrd' } as BuiltImage;
  const base = (id: string, extra: Partial<StandbyBootOptions> = {}): StandbyBootOptions =>
    ({
      id,
      profileName: 'p',
      driver: { name: 'qemu' } as VmmDriver,
      image,
      vcpus: 1,
      memoryMib: 256,
      kernelArgs: 'console=ttyS0',
      bootTimeoutMs: 1000,
      stopTimeoutMs: 1000,
      runDir: `/run/vms/${id}`,
      consoleLogPath: `/logs/${id}.console.log`,
      scratchDisk: { path: `/run/vms/${id}/scratch.ext4`, sizeMib: 64 },
      snapshot: { memoryPath: '/s/memory', statePath: '/s/state', scratchDiskPath: '/s/scratch.ext4' },
      ...extra,
    }) as StandbyBootOptions;

  it('ignores what is each VM own (id, run dir, console log, disk path) and nothing else', () => {
    expect(standbyKey(base('vm-a'))).toBe(standbyKey(base('vm-b')));
    expect(standbyKey(base('vm-a'))).not.toBe(standbyKey(base('vm-a', { vcpus: 2 })));
    expect(standbyKey(base('vm-a'))).not.toBe(standbyKey(base('vm-a', { kernelArgs: 'console=ttyS0 quiet' })));
    expect(standbyKey(base('vm-a'))).not.toBe(standbyKey(base('vm-a', { snapshot: { memoryPath: '/t/memory', statePath: '/t/state' } })));
    expect(standbyKey(base('vm-a'))).not.toBe(standbyKey(base('vm-a', { driver: { name: 'firecracker' } as VmmDriver })));
  });
});
