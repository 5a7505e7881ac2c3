import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { resolveImage } from '../src/guest/image-store.js';
import { findExecutable, ownerDeathMode } from '../src/process/index.js';
import { CleanupStack } from '../src/steps/index.js';
import { dataLayout, openDatabase, VmRepository, type Db } from '../src/store/index.js';
import { VmService, type Vm } from '../src/vm/index.js';
import { createDrivers, FirecrackerDriver, QemuDriver } from '../src/vmm/index.js';
import { qemuProcessesUsing, testDataDir } from './helpers.js';

/** Fields of /proc/PID/stat after the command name (which may hold spaces): [0] is field 3 (state). */
function statFields(path: string): string[] {
  const stat = readFileSync(path, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Nice value (field 19) of every thread of `pid`. */
function threadNices(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => Number(statFields(`/proc/${pid}/task/${tid}/stat`)[16]));
}

function thpEnabled(pid: number): number {
  return Number(/^THP_enabled:\s+(\d)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
}

const qemuBinary = findExecutable('qemu-system-x86_64');
const gcc = findExecutable('gcc');
const skip = !qemuBinary ? 'qemu-system-x86_64 not installed' : !gcc ? 'gcc not installed (the launcher cannot be built)' : null;
if (skip) process.stderr.write(`[vmm-launcher] skipped: ${skip}\n`);

// The default config (vmm.nice = 10, vmm.qemu.thp = "never"): QEMU starts through tfc-vmm-exec.
describe.skipIf(skip !== null)('QEMU started through tfc-vmm-exec (real QEMU, in-process)', () => {
  let db: Db;
  let repo: VmRepository;
  let service: VmService;
  let vm: Vm;

  beforeAll(async () => {
    const dataDir = testDataDir();
    const { config } = loadConfig({ env: { TFC_DATA_DIR: dataDir }, cwd: dataDir });
    expect(config.vmm.nice).toBe(10);
    expect(config.vmm.qemu.thp).toBe('never');
    const layout = dataLayout(dataDir);
    db = openDatabase(layout.database);
    repo = new VmRepository(db);
    service = new VmService({ layout, repo, drivers: createDrivers(config), stopTimeoutMs: 3000 });
    vm = await service.create({ profile: config.profiles.minimal });
  }, 180_000);

  afterAll(async () => {
    await service?.stopAll('test finished');
    db?.close();
  });

  it('runs QEMU itself under the recorded pid, with the launcher gone from the process tree', () => {
    const pid = repo.get(vm.id)!.pid!;
    expect(pid).toBe(vm.pid);
    const argv = cmdline(pid);
    expect(realpathSync(argv[0]!)).toBe(realpathSync(qemuBinary!));
    expect(argv.join(' ')).toContain(vm.id); // what reconciliation checks before it kills a pid
    expect(argv.join(' ')).not.toMatch(/tfc-vmm-exec/);
    // Its parent is the guard (or this process), never a launcher left waiting.
    const ppid = Number(statFields(`/proc/${pid}/stat`)[1]);
    const parent = cmdline(ppid).join(' ');
    if (ownerDeathMode() === 'guard') expect(parent).toMatch(/^\S*timeout --kill-after/);
    else if (ownerDeathMode() === 'none') expect(ppid).toBe(process.pid);
  });

  it('runs every QEMU thread at nice 10 with transparent huge pages disabled, while this process keeps its priority', async () => {
    const pid = vm.pid!;
    const r = await vm.exec({ argv: ['true'] });
    expect(r.exitCode).toBe(0);
    const nices = threadNices(pid);
    expect(nices.length).toBeGreaterThan(1); // main loop and vCPU threads at least
    expect(new Set(nices)).toEqual(new Set([10]));
    expect(thpEnabled(pid)).toBe(0);
    expect(Number(statFields(`/proc/${process.pid}/stat`)[16])).toBeLessThan(10);
    expect(thpEnabled(process.pid)).toBe(1);
  });

  it('stops cleanly: the process is gone and nothing of the VM is left', async () => {
    const pid = vm.pid!;
    await vm.stop('test');
    expect(() => process.kill(pid, 0)).toThrow();
    expect(repo.get(vm.id)?.state).toBe('stopped');
    // Only this VM's: other tests may run VMs in the same data dir meanwhile (assertNothingLeft would count theirs).
    expect(existsSync(join(testDataDir(), 'run', 'vms', vm.id))).toBe(false);
    expect((await qemuProcessesUsing(vm.id)).length).toBe(0);
  });
});

describe.skipIf(!qemuBinary)('QEMU without the launcher', () => {
  const scratchRuns: CleanupStack[] = [];
  afterAll(async () => {
    while (scratchRuns.length) await scratchRuns.pop()!.run();
  });

  /** Spawns QEMU (parked before the guest runs) with `driver` and returns its pid. */
  async function spawnParked(driver: QemuDriver, name: string): Promise<number> {
    const image = resolveImage(dataLayout(testDataDir()), 'minimal');
    const runDir = join(testDataDir(), 'run', 'vms', `launcher-${name}-${process.pid}`);
    const cleanup = new CleanupStack();
    scratchRuns.push(cleanup);
    mkdirSync(runDir, { recursive: true });
    cleanup.push('remove run dir', () => rmSync(runDir, { recursive: true, force: true }));
    const instance = await driver.spawn(
      {
        vmId: `launcher-${name}`,
        runDir,
        consoleLogPath: join(runDir, 'console.log'),
        kernelPath: image.kernelPath,
        initrdPath: image.initrdPath,
        kernelArgs: driver.baseKernelArgs(),
        vcpus: 1,
        memoryMib: 128,
      },
      cleanup,
    );
    await instance.configure();
    return instance.pid;
  }

  it('with nice 0 and THP inherited starts QEMU as it is', async () => {
    const pid = await spawnParked(
      new QemuDriver({ binary: 'qemu-system-x86_64', accel: 'tcg', exec: { nice: 0, disableThp: false }, cacheDir: null }),
      'plain',
    );
    expect(realpathSync(cmdline(pid)[0]!)).toBe(realpathSync(qemuBinary!));
    expect(new Set(threadNices(pid))).toEqual(new Set([Number(statFields(`/proc/${process.pid}/stat`)[16])]));
    expect(thpEnabled(pid)).toBe(1);
  }, 60_000);

  it('without a place to build it renices every thread after the start (THP stays on)', async () => {
    const pid = await spawnParked(
      new QemuDriver({ binary: 'qemu-system-x86_64', accel: 'tcg', exec: { nice: 10, disableThp: true }, cacheDir: null }),
      'fallback',
    );
    expect(realpathSync(cmdline(pid)[0]!)).toBe(realpathSync(qemuBinary!));
    expect(new Set(threadNices(pid))).toEqual(new Set([10]));
    expect(thpEnabled(pid)).toBe(1);
  }, 60_000);
});

// A plain (not jailed) Firecracker gets vmm.nice through the launcher too; the fake stands in for it (no KVM needed).
describe.skipIf(!gcc)('plain Firecracker (the fake) through tfc-vmm-exec', () => {
  const FAKE = join(import.meta.dirname, 'fake-firecracker', 'fake-firecracker.mjs');
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-fc-launcher-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs at the nice value under its own pid, and stops', async () => {
    const driver = new FirecrackerDriver({ binary: FAKE, exec: { nice: 6, disableThp: false }, cacheDir: join(dir, 'cache') });
    const kernel = join(dir, 'vmlinux');
    writeFileSync(kernel, 'not a kernel: the fake only checks it exists');
    const runDir = join(dir, 'run');
    mkdirSync(runDir);
    const cleanup = new CleanupStack();
    let pid = -1;
    try {
      const instance = await driver.spawn(
        {
          vmId: 'fc-launcher',
          runDir,
          consoleLogPath: join(dir, 'console.log'),
          kernelPath: kernel,
          initrdPath: kernel,
          kernelArgs: driver.baseKernelArgs(),
          vcpus: 1,
          memoryMib: 128,
        },
        cleanup,
      );
      pid = instance.pid;
      expect(cmdline(pid).join(' ')).toContain('fake-firecracker.mjs --api-sock');
      expect(cmdline(pid).join(' ')).not.toMatch(/tfc-vmm-exec/);
      expect(new Set(threadNices(pid))).toEqual(new Set([6]));
    } finally {
      await cleanup.run();
    }
    expect(() => process.kill(pid, 0)).toThrow();
  }, 60_000);
});
