/**
 * The jailer: argv construction and cgroup paths (pure), chroot file
 * placement and removal (real files), and the driver booting, snapshotting
 * and restoring through test/fake-firecracker/fake-jailer.mjs, which takes
 * the jailer's documented command line, builds the chroot directory and
 * runs the fake Firecracker in it as the jail user (no real chroot, cgroups
 * or namespaces). Everything made is removed after each test.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../../guest/agent-build.js';
import { coldBootSteps, restoreSteps, withScratchDisk, type BootContext } from '../../vm/boot-steps.js';
import { launchDrives } from '../../vm/disks.js';
import { CleanupStack } from '../../steps/index.js';
import type { VmLaunchSpec } from '../driver.js';
import { FirecrackerDriver } from './driver.js';
import type { FirecrackerInstance } from './instance.js';
import { buildJailerArgv, createJail, firecrackerId, jailCgroupDirs, jailLayout, parseMounts, placeInJail, removeJail, type JailerOptions } from './jailer.js';

const FAKE = fileURLToPath(new URL('../../../test/fake-firecracker/fake-firecracker.mjs', import.meta.url));
const FAKE_JAILER = fileURLToPath(new URL('../../../test/fake-firecracker/fake-jailer.mjs', import.meta.url));
const hasGcc = spawnSync('gcc', ['--version']).status === 0;
const isRoot = process.getuid?.() === 0;

const base: JailerOptions = {
  binary: '/usr/bin/jailer',
  uid: 123,
  gid: 100,
  chrootBaseDir: '/srv/jailer',
  cgroupVersion: 2,
  parentCgroup: '',
  cgroups: [],
  resourceLimits: [],
  netns: '',
};

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'fc-jailer-'));
  chmodSync(scratch, 0o755);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('jailer argv and paths', () => {
  it('builds the documented command line, Firecracker arguments after --', () => {
    const argv = buildJailerArgv(
      {
        ...base,
        parentCgroup: 'tfc/vms',
        cgroups: ['memory.max=536870912', 'cpu.max=50000 100000'],
        resourceLimits: ['no-file=1024', 'fsize=2000000000'],
        netns: 'tfc-a1',
      },
      { id: 'vm-1', execFile: '/usr/bin/firecracker', firecrackerArgs: ['--api-sock', '/firecracker.sock'] },
    );
    expect(argv).toEqual([
      '--id',
      'vm-1',
      '--exec-file',
      '/usr/bin/firecracker',
      '--uid',
      '123',
      '--gid',
      '100',
      '--parent-cgroup',
      'tfc/vms',
      '--cgroup-version',
      '2',
      '--cgroup',
      'memory.max=536870912',
      '--cgroup',
      'cpu.max=50000 100000',
      '--chroot-base-dir',
      '/srv/jailer',
      '--netns',
      '/var/run/netns/tfc-a1',
      '--resource-limit',
      'no-file=1024',
      '--resource-limit',
      'fsize=2000000000',
      '--',
      '--api-sock',
      '/firecracker.sock',
    ]);
  });

  it('omits what is not configured, and a VM netns path wins over the config', () => {
    const argv = buildJailerArgv(
      { ...base, netns: '/var/run/netns/shared' },
      { id: 'x', execFile: '/fc/firecracker', netns: '/run/netns/own', firecrackerArgs: [] },
    );
    expect(argv).toEqual([
      '--id',
      'x',
      '--exec-file',
      '/fc/firecracker',
      '--uid',
      '123',
      '--gid',
      '100',
      '--cgroup-version',
      '2',
      '--chroot-base-dir',
      '/srv/jailer',
      '--netns',
      '/run/netns/own',
      '--',
    ]);
  });

  it('makes ids the jailer accepts: alphanumerics and hyphens, at most 64', () => {
    expect(firecrackerId('vm-0123abcd')).toBe('vm-0123abcd');
    expect(firecrackerId('pool_a.vm 1')).toBe('pool-a-vm-1');
    expect(firecrackerId('x'.repeat(80))).toHaveLength(64);
    expect(firecrackerId('')).toBe('vm');
  });

  it('computes the jail and the cgroup directories the jailer makes (v2 mount, v1 per controller)', () => {
    expect(jailLayout(base, '/usr/local/bin/firecracker-v1.12', 'vm-1')).toEqual({
      execName: 'firecracker-v1.12',
      jailDir: '/srv/jailer/firecracker-v1.12/vm-1',
      root: '/srv/jailer/firecracker-v1.12/vm-1/root',
    });
    const mounts = [
      'cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0',
      'cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0',
      'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0',
      'tmpfs /with\\040space tmpfs rw 0 0',
    ].join('\n');
    expect(parseMounts(mounts).at(-1)?.path).toBe('/with space');
    expect(jailCgroupDirs({ ...base, parentCgroup: 'tfc' }, 'firecracker', 'vm-1', mounts)).toEqual(['/sys/fs/cgroup/unified/tfc/vm-1']);
    expect(
      jailCgroupDirs({ ...base, cgroupVersion: 1, cgroups: ['memory.limit_in_bytes=1', 'cpu.shares=10', 'cpuset.cpus=0'] }, 'firecracker', 'vm-1', mounts),
    ).toEqual(['/sys/fs/cgroup/memory/firecracker/vm-1', '/sys/fs/cgroup/cpu,cpuacct/firecracker/vm-1']);
  });
});

describe('jail files', () => {
  const owner = { uid: 65534, gid: 65534 };

  it('links files the jail user can read, copies those it cannot, and keeps writable ones the same file', () => {
    const dir = mkdtempSync(join(scratch, 'place-'));
    const layout = jailLayout({ chrootBaseDir: join(dir, 'jails') }, '/usr/bin/firecracker', 'vm-1');
    createJail(layout);
    expect(() => createJail(layout)).toThrow(/already exists/);
    const readable = join(dir, 'kernel');
    writeFileSync(readable, 'k', { mode: 0o644 });
    expect(placeInJail(layout.root, readable, 'vmlinux', owner)).toBe('/vmlinux');
    expect(statSync(join(layout.root, 'vmlinux')).ino).toBe(statSync(readable).ino);

    const secret = join(dir, 'snapshot.mem');
    writeFileSync(secret, 'm', { mode: 0o600 });
    expect(placeInJail(layout.root, secret, 'snapshot.mem', owner)).toBe('/snapshot.mem');
    const copy = statSync(join(layout.root, 'snapshot.mem'));
    expect(copy.ino).not.toBe(statSync(secret).ino);
    expect(statSync(secret).uid).toBe(process.getuid!()); // the original keeps its owner
    if (isRoot) expect(copy.uid).toBe(65534);

    const disk = join(dir, 'data.ext4');
    writeFileSync(disk, 'd', { mode: 0o644 });
    placeInJail(layout.root, disk, 'drive-data', owner, { writable: true });
    expect(statSync(join(layout.root, 'drive-data')).ino).toBe(statSync(disk).ino);
    if (isRoot) expect(statSync(disk).uid).toBe(65534); // documented: a read-write drive is handed to the jail user

    expect(() => placeInJail(layout.root, join(dir, 'missing'), 'x', owner)).toThrow(/does not exist/);
    expect(removeJail(layout, [join(dir, 'no-such-cgroup')])).toEqual([]);
    expect(existsSync(layout.jailDir)).toBe(false);
    expect(existsSync(join(dir, 'jails', 'firecracker'))).toBe(true); // shared by other VMs: kept
    expect(readFileSync(readable, 'utf8')).toBe('k');
  });

  it('never removes a directory that is not a jail', () => {
    const dir = mkdtempSync(join(scratch, 'guard-'));
    removeJail({ execName: 'firecracker', jailDir: dir, root: join(dir, 'not-root') }, []);
    expect(existsSync(dir)).toBe(true);
  });
});

describe.runIf(hasGcc)('FirecrackerDriver through the (fake) jailer', () => {
  let agent: string;
  let kernel: string;
  let initrd: string;
  let reports: string;
  const stacks: CleanupStack[] = [];
  let seq = 0;
  const jailUser = isRoot ? { uid: 65534, gid: 65534 } : { uid: process.getuid!(), gid: process.getgid!() };

  beforeAll(async () => {
    agent = join(scratch, 'tfc-agent');
    await buildAgent(agent);
    kernel = join(scratch, 'vmlinux');
    initrd = join(scratch, 'initrd.img');
    writeFileSync(kernel, 'kernel', { mode: 0o644 });
    writeFileSync(initrd, 'initrd', { mode: 0o644 });
    reports = join(scratch, 'reports');
    mkdirSync(reports, { mode: 0o777 });
    chmodSync(reports, 0o777); // the jailed fake writes its report as the jail user
  }, 300_000);

  afterEach(async () => {
    while (stacks.length) await stacks.pop()!.run();
  });

  /** A chroot base the jail user can traverse: the fake jailer does not pivot_root, so host directory permissions still apply. */
  function chrootBaseDir(): string {
    const dir = mkdtempSync(join(scratch, 'jails-'));
    chmodSync(dir, 0o755);
    return dir;
  }

  function jailedDriver(chrootBaseDir: string): FirecrackerDriver {
    return new FirecrackerDriver({
      binary: FAKE,
      jailer: {
        ...base,
        binary: FAKE_JAILER,
        ...jailUser,
        chrootBaseDir,
        parentCgroup: `tfc-test-${process.pid}`,
        cgroups: ['memory.max=268435456'],
        resourceLimits: ['no-file=1024'],
      },
      env: { ...process.env, FAKE_FC_GUEST_AGENT: agent, FAKE_FC_REPORT: join(reports, '{id}.json'), FAKE_JAILER_REPORT: join(reports, '{id}.jailer.json') },
    });
  }

  function spec(d: FirecrackerDriver, extra: Partial<VmLaunchSpec> = {}): VmLaunchSpec {
    const id = `jail-${process.pid}-${seq++}`;
    return {
      vmId: id,
      runDir: join(scratch, 'run', id),
      consoleLogPath: join(scratch, `${id}.console.log`),
      kernelPath: kernel,
      initrdPath: initrd,
      kernelArgs: d.baseKernelArgs(),
      vcpus: 1,
      memoryMib: 128,
      ...extra,
    };
  }

  async function run(steps: ReturnType<typeof coldBootSteps>, s: VmLaunchSpec, d: FirecrackerDriver): Promise<BootContext & { instance: FirecrackerInstance }> {
    const cleanup = new CleanupStack();
    stacks.push(cleanup);
    const ctx: BootContext = { spec: s, driver: d, cleanup, deadline: performance.now() + 60_000 };
    await steps.run(ctx);
    return ctx as BootContext & { instance: FirecrackerInstance };
  }

  const report = (id: string) =>
    JSON.parse(readFileSync(join(reports, `${id}.json`), 'utf8')) as {
      pid: number;
      violations: unknown[];
      requests: { operationId: string; body?: Record<string, unknown> }[];
    };

  it('boots, snapshots and restores with chroot paths, as the jail user, and removes the jails', async () => {
    const chrootBase = chrootBaseDir();
    const d = jailedDriver(chrootBase);
    const templateSpec = spec(d);
    const template = await run(coldBootSteps(), templateSpec, d);
    const id = template.instance.id;
    const root = join(chrootBase, 'fake-firecracker.mjs', id, 'root');
    expect(template.instance.files.home).toBe(root);
    expect((await template.agent!.exec({ argv: ['id', '-u'] })).stdout.toString().trim()).toBe(String(jailUser.uid));

    const jailerReport = JSON.parse(readFileSync(join(reports, `${id}.jailer.json`), 'utf8'));
    expect(jailerReport.argv).toEqual(
      buildJailerArgv(
        {
          ...base,
          binary: FAKE_JAILER,
          ...jailUser,
          chrootBaseDir: chrootBase,
          parentCgroup: `tfc-test-${process.pid}`,
          cgroups: ['memory.max=268435456'],
          resourceLimits: ['no-file=1024'],
        },
        { id, execFile: FAKE, firecrackerArgs: ['--api-sock', '/firecracker.sock'] },
      ),
    );
    expect(jailerReport.firecrackerArgs.slice(0, 1)).toEqual([`--id=${id}`]);

    const fake = report(id);
    expect(fake.violations).toEqual([]);
    const body = (op: string) => fake.requests.find((q) => q.operationId === op)?.body;
    expect(body('putGuestBootSource')).toMatchObject({ kernel_image_path: '/vmlinux', initrd_path: '/initrd' });
    expect(body('putLogger')).toMatchObject({ log_path: '/firecracker.log' });
    expect(body('putMetrics')).toEqual({ metrics_path: '/metrics.json' });
    expect(body('putGuestVsock')).toEqual({ guest_cid: 3, uds_path: 'vsock.sock' });
    expect(statSync(join(root, 'vmlinux')).ino).toBe(statSync(kernel).ino); // linked, not copied

    const snapDir = mkdtempSync(join(scratch, 'snap-'));
    const files = { memoryPath: join(snapDir, 'memory'), statePath: join(snapDir, 'state') };
    await template.instance.pause();
    await template.instance.createSnapshot(files);
    expect(body('createSnapshot')).toBeUndefined();
    expect(report(id).requests.find((q) => q.operationId === 'createSnapshot')?.body).toEqual({
      snapshot_type: 'Full',
      snapshot_path: '/snapshot-out.state',
      mem_file_path: '/snapshot-out.mem',
    });
    expect(existsSync(files.statePath) && existsSync(files.memoryPath)).toBe(true);
    expect(readdirSync(root).filter((f) => f.startsWith('snapshot'))).toEqual([]); // moved out of the jail
    const fakePid = report(id).pid;
    await template.instance.shutdown(2000);
    await stacks.pop()!.run();
    expect(existsSync(join(chrootBase, 'fake-firecracker.mjs', id))).toBe(false);
    expect(() => process.kill(fakePid, 0)).toThrow();

    const cloneSpec = spec(d, { restoreFrom: files });
    // The fake's "guest" is the agent running on the host as the jail user: it may not set the
    // host's clock or add to its entropy pool, so the restore list runs without refresh_guest.
    const clone = await run(restoreSteps().remove('refresh_guest'), cloneSpec, d);
    expect((await clone.agent!.exec({ argv: ['echo', 'from-clone'] })).stdout.toString()).toBe('from-clone\n');
    const cloneFake = report(clone.instance.id);
    expect(cloneFake.violations).toEqual([]);
    expect(cloneFake.requests.find((q) => q.operationId === 'loadSnapshot')?.body).toEqual({
      snapshot_path: '/snapshot.state',
      mem_backend: { backend_type: 'File', backend_path: '/snapshot.mem' },
      resume_vm: false,
    });
    const cloneJail = join(chrootBase, 'fake-firecracker.mjs', clone.instance.id);
    expect(existsSync(join(cloneJail, 'root', 'vsock.sock'))).toBe(true);
    await clone.instance.shutdown(2000);
    await stacks.pop()!.run();
    expect(existsSync(cloneJail)).toBe(false);
    expect(readdirSync(join(chrootBase, 'fake-firecracker.mjs'))).toEqual([]);
  });

  it('puts the disks in the jail under fixed names, so a clone opens its own scratch copy at the path the snapshot recorded', async () => {
    const chrootBase = chrootBaseDir();
    const d = jailedDriver(chrootBase);
    const rootfs = join(scratch, `rootfs-${seq}.ext4`);
    writeFileSync(rootfs, 'root disk', { mode: 0o644 });
    const withDisks = (extra: Partial<VmLaunchSpec> = {}) => {
      const s = spec(d, extra);
      return { ...s, drives: launchDrives(rootfs, join(s.runDir, 'scratch.ext4')) };
    };
    const boot = async (s: VmLaunchSpec, scratchDisk: NonNullable<BootContext['scratchDisk']>, steps: ReturnType<typeof coldBootSteps>) => {
      const cleanup = new CleanupStack();
      stacks.push(cleanup);
      const ctx: BootContext = { spec: s, driver: d, cleanup, deadline: performance.now() + 60_000, scratchDisk };
      await withScratchDisk(steps).run(ctx);
      return ctx as BootContext & { instance: FirecrackerInstance };
    };
    const templateSpec = withDisks();
    const template = await boot(templateSpec, { path: templateSpec.drives[1].path, sizeMib: 8 }, coldBootSteps());
    const root = join(chrootBase, 'fake-firecracker.mjs', template.instance.id, 'root');
    const fake = report(template.instance.id);
    expect(fake.violations).toEqual([]);
    expect(fake.requests.filter((q) => q.operationId === 'putGuestDriveByID').map((q) => q.body)).toEqual([
      { drive_id: 'rootfs', path_on_host: '/drive-rootfs', is_root_device: false, is_read_only: true },
      { drive_id: 'scratch', path_on_host: '/drive-scratch', is_root_device: false, is_read_only: false, cache_type: 'Writeback' },
    ]);
    // The writable disk is the run dir's file itself (a hard link), owned by the jail user.
    expect(statSync(join(root, 'drive-scratch')).ino).toBe(statSync(templateSpec.drives[1].path).ino);
    expect(statSync(join(root, 'drive-scratch')).uid).toBe(jailUser.uid);

    const snapDir = mkdtempSync(join(scratch, 'snap-'));
    const files = { memoryPath: join(snapDir, 'memory'), statePath: join(snapDir, 'state'), scratchDiskPath: join(snapDir, 'scratch.ext4') };
    await template.instance.pause();
    await template.instance.createSnapshot(files);
    copyFileSync(templateSpec.drives[1].path, files.scratchDiskPath);
    await template.instance.shutdown(2000);
    await stacks.pop()!.run();

    const cloneSpec = withDisks({ restoreFrom: files });
    const clone = await boot(
      cloneSpec,
      { path: cloneSpec.drives[1].path, sizeMib: 8, copyFrom: files.scratchDiskPath },
      restoreSteps().remove('refresh_guest'),
    );
    expect((await clone.agent!.exec({ argv: ['echo', 'clone with disks'] })).stdout.toString()).toBe('clone with disks\n');
    expect(report(clone.instance.id).violations).toEqual([]);
    const cloneRoot = join(chrootBase, 'fake-firecracker.mjs', clone.instance.id, 'root');
    expect(statSync(join(cloneRoot, 'drive-scratch')).ino).toBe(statSync(cloneSpec.drives[1].path).ino);
    expect(statSync(join(cloneRoot, 'drive-scratch')).ino).not.toBe(statSync(files.scratchDiskPath).ino);
    await clone.instance.shutdown(2000);
    await stacks.pop()!.run();
    expect(readdirSync(join(chrootBase, 'fake-firecracker.mjs'))).toEqual([]);
  });

  it('surfaces the jailer refusing its arguments as VMM_EXITED with the jailer message, and removes the jail', async () => {
    const chrootBase = chrootBaseDir();
    const d = new FirecrackerDriver({
      binary: FAKE,
      jailer: { ...base, binary: FAKE_JAILER, ...jailUser, chrootBaseDir: chrootBase, netns: join(scratch, 'no-such-netns') },
      env: { ...process.env, FAKE_FC_GUEST_AGENT: agent },
    });
    const s = spec(d);
    const cleanup = new CleanupStack();
    stacks.push(cleanup);
    await expect(d.spawn(s, cleanup)).rejects.toMatchObject({ code: 'VMM_EXITED', message: expect.stringContaining('Failed to open the network namespace') });
    await cleanup.run();
    expect(readdirSync(join(chrootBase, 'fake-firecracker.mjs'))).toEqual([]);
  });

  it('a missing jailer binary is VMM_BINARY_NOT_FOUND naming the config key', async () => {
    const d = new FirecrackerDriver({ binary: FAKE, jailer: { ...base, binary: join(scratch, 'no-jailer') } });
    await expect(d.probe()).rejects.toMatchObject({ code: 'VMM_BINARY_NOT_FOUND', message: expect.stringContaining('vmm.firecracker.jailer') });
  });
});
