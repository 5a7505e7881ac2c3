/**
 * Disks under Firecracker (docs/disks.md), against the fake Firecracker,
 * which validates every request against the vendored API spec and, like
 * Firecracker, opens the drive paths a snapshot recorded when a clone loads
 * it: the spec's drives become PUT /drives bodies (never the root device;
 * the scratch disk named relative to the run dir), and a clone restores
 * only with its own copy of the scratch disk in its own run dir.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../../guest/agent-build.js';
import { coldBootSteps, restoreSteps, withScratchDisk, type BootContext } from '../../vm/boot-steps.js';
import { launchDrives } from '../../vm/disks.js';
import { CleanupStack, StepFailedError } from '../../steps/index.js';
import type { SnapshotFiles, VmLaunchSpec } from '../driver.js';
import { FirecrackerDriver } from './driver.js';
import type { FirecrackerInstance } from './instance.js';
import { specDrives } from './launch-options.js';

const FAKE = fileURLToPath(new URL('../../../test/fake-firecracker/fake-firecracker.mjs', import.meta.url));
const canRun = spawnSync('gcc', ['--version']).status === 0 && spawnSync('mke2fs', ['-V']).status === 0;
if (!canRun) console.warn('skipping the Firecracker drive tests: they need gcc (the guest agent) and mke2fs (e2fsprogs)');

interface FakeReport {
  requests: { operationId: string | null; body?: Record<string, unknown>; status: number }[];
  violations: unknown[];
}

let scratch: string;
let agent: string;
let kernel: string;
let rootfs: string;
let seq = 0;
const stacks: CleanupStack[] = [];

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'fc-drives-'));
  chmodSync(scratch, 0o755);
  kernel = join(scratch, 'vmlinux');
  rootfs = join(scratch, 'rootfs.ext4');
  writeFileSync(kernel, 'not a kernel: the fake only checks it exists');
  writeFileSync(rootfs, 'not a filesystem: the fake only opens it');
  mkdirSync(join(scratch, 'reports'));
  agent = join(scratch, 'tfc-agent');
  if (canRun) await buildAgent(agent);
}, 300_000);

afterEach(async () => {
  while (stacks.length) await stacks.pop()!.run();
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const driver = () =>
  new FirecrackerDriver({ binary: FAKE, env: { ...process.env, FAKE_FC_GUEST_AGENT: agent, FAKE_FC_REPORT: join(scratch, 'reports', '{id}.json') } });

function spec(d: FirecrackerDriver, restoreFrom?: SnapshotFiles): VmLaunchSpec {
  const id = `fcd-${process.pid}-${seq++}`;
  const runDir = join(scratch, 'run', id);
  return {
    vmId: id,
    runDir,
    consoleLogPath: join(scratch, `${id}.console.log`),
    kernelPath: kernel,
    initrdPath: '',
    kernelArgs: `${d.baseKernelArgs()} tfc.root=/dev/vda tfc.scratch=/dev/vdb`,
    vcpus: 1,
    memoryMib: 128,
    drives: launchDrives(rootfs, join(runDir, 'scratch.ext4')),
    ...(restoreFrom ? { restoreFrom } : {}),
  };
}

async function start(s: VmLaunchSpec, d: FirecrackerDriver, scratchDisk: BootContext['scratchDisk'] | null) {
  const cleanup = new CleanupStack();
  stacks.push(cleanup);
  const ctx: BootContext = { spec: s, driver: d, cleanup, deadline: performance.now() + 60_000, ...(scratchDisk ? { scratchDisk } : {}) };
  const base = s.restoreFrom ? restoreSteps() : coldBootSteps();
  await (scratchDisk ? withScratchDisk(base) : base).run(ctx);
  return ctx as BootContext & { instance: FirecrackerInstance };
}

const report = (id: string) => JSON.parse(readFileSync(join(scratch, 'reports', `${id}.json`), 'utf8')) as FakeReport;

describe('specDrives', () => {
  it('maps the spec disks to Firecracker drives: not root, read-only root disk, Writeback scratch', () => {
    expect(specDrives({ drives: launchDrives('/img/rootfs.ext4', '/run/vm/scratch.ext4') })).toEqual([
      { drive_id: 'rootfs', path_on_host: '/img/rootfs.ext4', is_root_device: false, is_read_only: true },
      { drive_id: 'scratch', path_on_host: '/run/vm/scratch.ext4', is_root_device: false, is_read_only: false, cache_type: 'Writeback' },
    ]);
    expect(specDrives({})).toEqual([]);
  });
});

describe.runIf(canRun)('Firecracker drives against the fake Firecracker', () => {
  it('attaches the root and scratch disks as the spec allows, and clones open their own scratch copy', async () => {
    const d = driver();
    const templateSpec = spec(d);
    const template = await start(templateSpec, d, { path: templateSpec.drives![1].path, sizeMib: 8 });
    const fake = report(template.instance.id);
    expect(fake.violations).toEqual([]);
    expect(fake.requests.filter((q) => q.operationId === 'putGuestDriveByID').map((q) => [q.status, q.body])).toEqual([
      [204, { drive_id: 'rootfs', path_on_host: rootfs, is_root_device: false, is_read_only: true }],
      // Relative to the run dir (Firecracker's working directory): the snapshot records it, and each clone has its own.
      [204, { drive_id: 'scratch', path_on_host: 'scratch.ext4', is_root_device: false, is_read_only: false, cache_type: 'Writeback' }],
    ]);

    const snapDir = join(scratch, `snap-${seq++}`);
    mkdirSync(snapDir);
    const files: SnapshotFiles = { memoryPath: join(snapDir, 'memory'), statePath: join(snapDir, 'state'), scratchDiskPath: join(snapDir, 'scratch.ext4') };
    await template.instance.pause();
    await template.instance.createSnapshot(files);
    copyFileSync(templateSpec.drives![1].path, files.scratchDiskPath!);
    await template.instance.shutdown(2000);

    const cloneSpec = spec(d, files);
    const clone = await start(cloneSpec, d, { path: cloneSpec.drives![1].path, sizeMib: 8, copyFrom: files.scratchDiskPath! });
    expect(clone.instance.configPhases.map((p) => p.name)).toEqual(['api_socket', 'logger', 'metrics', 'place_drives', 'load_snapshot', 'mmds_data']);
    expect(report(clone.instance.id).violations).toEqual([]);
    expect((await clone.agent!.exec({ argv: ['echo', 'restored'] })).stdout.toString()).toBe('restored\n');
    expect(existsSync(join(cloneSpec.runDir, 'scratch.ext4'))).toBe(true);

    // Without its own scratch disk a clone cannot load the snapshot, as with Firecracker.
    const bare = spec(d, files);
    const failed = await start(bare, d, null).then(
      () => null,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(StepFailedError);
    expect((failed as StepFailedError).step).toBe('load_snapshot');
    expect(String((failed as StepFailedError).cause)).toMatch(/Block\(BackingFile/);
  });
});
