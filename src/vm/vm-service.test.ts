import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolveImage, type BuiltImage } from '../guest/image-store.js';
import { defaultConfig, resolveProfile } from '../config/index.js';
import type { VmmDriver } from '../vmm/driver.js';
import type { DataLayout } from '../store/layout.js';
import type { VmRepository } from '../store/vm-repository.js';
import type { FakeDriver } from '../testing/fake-driver.js';
import { canRunFakeVms, compileFakeGuest, openFakeRuntime, type FakeRuntime } from '../testing/fake-runtime.js';
import { kernelArgsFor, VmService, type VmProfile } from './vm-service.js';

// VM lifecycle and its failure paths through the real Vm/VmService code,
// with a fake VMM whose "guest" is the real agent on a Unix socket: what
// the store records, what is left behind, and what callers are told.

if (!canRunFakeVms) console.warn('VmService tests skipped: gcc is not installed (apt-get install gcc libc6-dev)');

describe.skipIf(!canRunFakeVms)('VmService with a fake VMM', () => {
  let guest: Awaited<ReturnType<typeof compileFakeGuest>>;
  let rt: FakeRuntime;
  let dir: string;
  let layout: DataLayout;
  let repo: VmRepository;
  let driver: FakeDriver;
  let service: VmService;
  let failures: string[];
  let profile: VmProfile;

  beforeAll(async () => {
    guest = await compileFakeGuest();
  }, 120_000);
  afterAll(() => guest?.remove());

  beforeEach(() => {
    rt = openFakeRuntime(guest.agentBinary);
    ({ dir, layout, repo, driver, profile } = rt);
    failures = [];
    // A service of its own, to watch what it tells its observer.
    service = new VmService({
      layout,
      repo,
      drivers: { qemu: driver },
      stopTimeoutMs: 1000,
      observer: { vmReady: () => undefined, vmFailed: (d, code) => failures.push(`${d}:${code}`) },
    });
  });

  afterEach(async () => {
    await service.stopAll('test finished');
    await rt.close();
  });

  it('boots a VM that runs commands, records its phases, and leaves nothing after destroy', async () => {
    const vm = await service.create({ profile });
    expect(vm.state).toBe('running');
    expect(vm.createdBy).toBe('boot');
    expect(vm.bootPhases.map((p) => p.name)).toEqual(['prepare', 'spawn_vmm', 'configure', 'start', 'kernel', 'agent_ready']);
    const r = await vm.exec({ argv: ['sh', '-c', 'echo hello; echo oops >&2; exit 3'] });
    expect(r.exitCode).toBe(3);
    expect(r.stdout.toString()).toBe('hello\n');
    expect(r.stderr.toString()).toBe('oops\n');
    const record = repo.get(vm.id);
    expect(record).toMatchObject({ state: 'running', driver: 'qemu', profile: profile.name, pid: vm.pid, accel: 'tcg' });
    expect(repo.phases(vm.id, 'boot').map((p) => p.name)).toContain('agent_ready');
    expect(service.get(vm.id)).toBe(vm);
    expect(service.list()).toEqual([vm]);

    await service.destroy(vm, 'done with it');
    expect(vm.state).toBe('stopped');
    expect(repo.get(vm.id).state).toBe('stopped');
    expect(repo.transitions(vm.id).map((t) => t.to)).toEqual(['creating', 'booting', 'running', 'stopping', 'stopped']);
    expect(driver.instances[0].exited).toBe(true);
    expect(existsSync(join(layout.runVms, vm.id))).toBe(false);
    expect(service.list()).toEqual([]);
    // Stopping again is a no-op; a stopped VM refuses work, naming its state.
    await vm.stop();
    await expect(vm.exec({ argv: ['true'] })).rejects.toMatchObject({ code: 'INVALID_STATE', message: expect.stringContaining('stopped') });
  });

  it('moves files in and out and pauses/resumes, refusing exec while paused', async () => {
    const vm = await service.create({ profile });
    const path = join(dir, 'in-guest.txt');
    await vm.writeFile(path, 'payload');
    expect((await vm.readFile(path)).data.toString()).toBe('payload');
    expect(await vm.mkdir(join(dir, 'made', 'deep'), { parents: true })).toEqual({ created: true });
    expect((await vm.listDir(join(dir, 'made'))).entries.map((e) => [e.name, e.type])).toEqual([['deep', 'dir']]);
    expect(await vm.stat(path)).toMatchObject({ type: 'file', size: 7 });
    expect(await vm.remove(join(dir, 'made'), { recursive: true })).toEqual({ removed: 2 });
    await vm.pause();
    expect(vm.state).toBe('paused');
    await expect(vm.listDir(dir)).rejects.toMatchObject({ code: 'INVALID_STATE', message: expect.stringContaining('paused') });
    await expect(vm.remove(path)).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await expect(vm.exec({ argv: ['true'] })).rejects.toMatchObject({ code: 'INVALID_STATE', message: expect.stringContaining('paused') });
    await vm.resume();
    expect((await vm.exec({ argv: ['true'] })).exitCode).toBe(0);
  });

  it('a VMM that cannot start: VMM_SPAWN_FAILED, recorded as failed with the error, nothing left', async () => {
    driver.faults = { spawnFails: true };
    await expect(service.create({ profile })).rejects.toMatchObject({ code: 'VMM_SPAWN_FAILED' });
    const [record] = repo.list();
    expect(record).toMatchObject({ state: 'failed', errorCode: 'VMM_SPAWN_FAILED', errorMessage: expect.stringContaining('injected fault') });
    // The phases up to and including the one that failed.
    expect(repo.phases(record.id, 'boot').map((p) => p.name)).toEqual(['prepare', 'spawn_vmm']);
    expect(existsSync(join(layout.runVms, record.id))).toBe(false);
    expect(service.list()).toEqual([]);
    expect(failures).toEqual(['qemu:VMM_SPAWN_FAILED']);
  });

  it('a guest that never boots: VM_BOOT_TIMEOUT naming the fix, the VMM is killed', async () => {
    driver.faults = { kernelHangs: true };
    await expect(service.create({ profile: { ...profile, bootTimeoutMs: 300 } })).rejects.toMatchObject({ code: 'VM_BOOT_TIMEOUT' });
    expect(driver.instances[0].exited).toBe(true);
    const [record] = repo.list();
    expect(record).toMatchObject({ state: 'failed', errorCode: 'VM_BOOT_TIMEOUT' });
    expect(readdirSync(layout.runVms)).toEqual([]);
  });

  it('a VMM that dies while booting: VMM_EXITED, recorded', async () => {
    driver.faults = { exitsDuringBoot: true };
    await expect(service.create({ profile })).rejects.toMatchObject({ code: 'VMM_EXITED' });
    expect(repo.list()[0]).toMatchObject({ state: 'failed', errorCode: 'VMM_EXITED' });
  });

  it('a VM whose VMM dies while running is marked failed with the reason, listeners hear it once', async () => {
    const vm = await service.create({ profile });
    const heard: string[] = [];
    vm.onFailed((reason) => heard.push(reason));
    const unsubscribed: string[] = [];
    vm.onFailed((r) => unsubscribed.push(r))();
    driver.instances[0].child.kill('SIGKILL');
    for (let i = 0; i < 200 && vm.state !== 'failed'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(vm.state).toBe('failed');
    expect(heard).toEqual([expect.stringContaining('the VMM was killed by SIGKILL')]);
    expect(unsubscribed).toEqual([]);
    expect(repo.get(vm.id)).toMatchObject({ state: 'failed', errorCode: 'VMM_EXITED', errorMessage: expect.stringContaining(vm.consoleLogPath) });
    await expect(vm.exec({ argv: ['true'] })).rejects.toMatchObject({ code: 'INVALID_STATE' });
    // Stopping a failed VM releases what it holds and keeps it failed (its record says why).
    await service.destroy(vm);
    expect(vm.state).toBe('failed');
    expect(existsSync(join(layout.runVms, vm.id))).toBe(false);
  });

  it('restores a clone from snapshot files: restore phases, fresh clock and entropy', async () => {
    const template = await service.create({ profile });
    await template.pause();
    const files = { memoryPath: join(dir, 'memory'), statePath: join(dir, 'state') };
    await template.createSnapshot(files);
    await expect(template.createSnapshot(files)).resolves.toBeUndefined();
    await service.destroy(template);
    writeFileSync(files.memoryPath, '');
    writeFileSync(files.statePath, '');
    const clone = await service.restore({ profile, snapshot: files, image: resolveImage(layout, profile.image) });
    expect(clone.createdBy).toBe('restore');
    expect(clone.bootPhases.map((p) => p.name)).toEqual(['prepare', 'spawn_vmm', 'load_snapshot', 'resume', 'agent_ready', 'refresh_guest']);
    expect((await clone.exec({ argv: ['echo', 'clone'] })).stdout.toString()).toBe('clone\n');
    expect(clone.hello).toBeDefined();
    const hello = await clone.reconnectAgent(5000);
    expect(hello).toEqual(clone.hello);
    expect((await clone.exec({ argv: ['echo', 'again'] })).stdout.toString()).toBe('again\n');
  });

  it('a snapshot of a running VM is refused with its state', async () => {
    const vm = await service.create({ profile });
    await expect(vm.createSnapshot({ memoryPath: join(dir, 'm'), statePath: join(dir, 's') })).rejects.toMatchObject({ code: 'INVALID_STATE' });
  });

  it('refuses bad sizes, unknown drivers and networking without a network manager before creating anything', async () => {
    await expect(service.create({ profile, vcpus: 0 })).rejects.toThrow('vcpus must be an integer from 1 to 32, got 0');
    await expect(service.create({ profile, memoryMib: 16 })).rejects.toThrow('memory_mib must be an integer from 64 to 65536, got 16');
    await expect(service.create({ profile, driver: 'firecracker' })).rejects.toThrow('driver "firecracker" is not available here; available: qemu');
    await expect(
      service.create({ profile: { ...profile, network: { enabled: true, egressAllow: [], egressDeny: [], bandwidthMbit: 0 } } }),
    ).rejects.toMatchObject({ code: 'NETWORK_UNAVAILABLE' });
    expect(repo.list()).toEqual([]);
    expect(driver.instances).toEqual([]);
  });

  it('stopAll stops every VM, including one still booting', async () => {
    const a = await service.create({ profile });
    const booting = service.create({ profile });
    await service.stopAll('shutting down');
    const b = await booting.catch(() => undefined);
    expect(a.state).toBe('stopped');
    if (b) await service.destroy(b);
    expect(driver.instances.every((i) => i.exited)).toBe(true);
  });

  it('a missing image says how to build it', async () => {
    rmSync(layout.images, { recursive: true, force: true });
    await expect(service.create({ profile })).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND', message: expect.stringContaining('tfc image build') });
  });
});

describe('kernelArgsFor', () => {
  const driver = { baseKernelArgs: () => 'console=ttyS0' } as VmmDriver;
  const profile = { ...resolveProfile(defaultConfig({ env: {} })), kernelArgs: 'tfc.dns=192.0.2.53' };
  const image = { manifest: {}, dir: '/img', kernelPath: '/img/vmlinux', initrdPath: '/img/initrd.cpio' } as BuiltImage;

  it('names the root and scratch disks for stage 1 of init, before the profile args (which win)', () => {
    const plain = kernelArgsFor(driver, { ...profile, diskMib: 0 }, image);
    expect(plain).not.toMatch(/tfc\.(root|scratch)/);
    expect(kernelArgsFor(driver, { ...profile, diskMib: 64 }, image)).toMatch(/ tfc\.scratch=\/dev\/vda tfc\.dns=192\.0\.2\.53$/);
    const withRoot = { ...image, rootfsPath: '/img/rootfs.ext4' } as BuiltImage;
    expect(kernelArgsFor(driver, { ...profile, diskMib: 0 }, withRoot)).toMatch(/ tfc\.root=\/dev\/vda tfc\.dns=/);
    expect(kernelArgsFor(driver, { ...profile, diskMib: 8 }, withRoot)).toMatch(/ tfc\.root=\/dev\/vda tfc\.scratch=\/dev\/vdb tfc\.dns=/);
  });
});
