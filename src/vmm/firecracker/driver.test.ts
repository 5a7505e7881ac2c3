/**
 * The Firecracker driver end to end against the fake Firecracker
 * (test/fake-firecracker), spawned by the driver itself, with a host build
 * of the guest agent playing the guest behind the fake's vsock: the
 * driver-independent boot and restore step lists, pause/resume, snapshots,
 * the optional devices, refusals and failures. The fake's report is the
 * judge: every request it got, and every one Firecracker would have refused.
 * Every process, socket and directory is removed after each test.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../../guest/agent-build.js';
import { liveChildren, runCommand } from '../../process/index.js';
import { coldBootSteps, restoreSteps, type BootContext } from '../../vm/boot-steps.js';
import { CleanupStack, StepFailedError, type StepList } from '../../steps/index.js';
import type { SnapshotFiles, VmLaunchSpec } from '../driver.js';
import { FirecrackerApiError } from './api-errors.js';
import { FirecrackerDriver, type FirecrackerDriverOptions } from './driver.js';
import type { FirecrackerInstance } from './instance.js';
import type { FirecrackerLaunchOptions, FirecrackerLaunchSpec } from './launch-options.js';

const FAKE = fileURLToPath(new URL('../../../test/fake-firecracker/fake-firecracker.mjs', import.meta.url));
const hasGcc = spawnSync('gcc', ['--version']).status === 0;
/** Creating a network namespace needs root and iproute2. */
const canNetns = process.getuid?.() === 0 && spawnSync('ip', ['-V']).status === 0 && spawnSync('nsenter', ['--version']).status === 0;
if (!canNetns) console.warn('skipping the network-namespace test: it needs root, ip (iproute2) and nsenter (util-linux)');
if (!hasGcc) console.warn('skipping the Firecracker driver tests that need a guest agent: gcc is not installed (apt-get install gcc libc6-dev)');

interface FakeReport {
  pid: number;
  exit: { reason: string } | null;
  vmState: string;
  requests: { method: string; path: string; operationId: string | null; body?: Record<string, unknown>; status: number; faultMessage?: string }[];
  violations: { kind: string; rule?: string; message: string; operationId: string | null }[];
}

let scratch: string;
let agent: string;
let kernel: string;
let initrd: string;
let reports: string;
let seq = 0;
const stacks: CleanupStack[] = [];

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'fc-driver-'));
  chmodSync(scratch, 0o755); // the jailed tests run the fake as an unprivileged user
  kernel = join(scratch, 'vmlinux');
  initrd = join(scratch, 'initrd.img');
  writeFileSync(kernel, 'not a kernel: the fake only checks it exists');
  writeFileSync(initrd, 'not an initrd');
  reports = join(scratch, 'reports');
  mkdirSync(reports, { mode: 0o777 });
  chmodSync(reports, 0o777);
  agent = join(scratch, 'tfc-agent');
  if (hasGcc) await buildAgent(agent);
}, 300_000);

afterEach(async () => {
  while (stacks.length) await stacks.pop()!.run();
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function driver(extra: Partial<FirecrackerDriverOptions> = {}, env: NodeJS.ProcessEnv = {}): FirecrackerDriver {
  return new FirecrackerDriver({
    binary: FAKE,
    env: { ...process.env, FAKE_FC_GUEST_AGENT: agent, FAKE_FC_REPORT: join(reports, '{id}.json'), ...env },
    ...extra,
  });
}

function spec(d: FirecrackerDriver, extra: Partial<FirecrackerLaunchSpec> = {}, firecracker?: FirecrackerLaunchOptions): FirecrackerLaunchSpec {
  const id = `fc-${process.pid}-${seq++}`;
  return {
    vmId: id,
    runDir: join(scratch, 'run', id),
    consoleLogPath: join(scratch, `${id}.console.log`),
    kernelPath: kernel,
    initrdPath: initrd,
    kernelArgs: `${d.baseKernelArgs()} quiet`,
    vcpus: 1,
    memoryMib: 256,
    ...extra,
    ...(firecracker ? { firecracker } : {}),
  };
}

function report(id: string): FakeReport {
  return JSON.parse(readFileSync(join(reports, `${id}.json`), 'utf8')) as FakeReport;
}

function operations(r: FakeReport): string[] {
  return r.requests
    .filter((q) => q.operationId !== 'describeInstance')
    .map((q) => (q.operationId === 'createSyncAction' ? `action:${String(q.body?.action_type)}` : (q.operationId ?? '?')));
}

async function run(steps: StepList<BootContext>, s: VmLaunchSpec, d: FirecrackerDriver): Promise<BootContext & { instance: FirecrackerInstance }> {
  const cleanup = new CleanupStack();
  stacks.push(cleanup);
  const ctx: BootContext = { spec: s, driver: d, cleanup, deadline: performance.now() + 60_000 };
  await steps.run(ctx);
  return ctx as BootContext & { instance: FirecrackerInstance };
}

/** Stops the VM, runs its cleanup, and checks nothing of it is left. */
async function stopAndCheck(ctx: BootContext, s: VmLaunchSpec): Promise<void> {
  const pid = ctx.instance!.pid;
  await ctx.instance!.shutdown(2000);
  const stack = stacks.splice(stacks.indexOf(ctx.cleanup), 1)[0];
  expect(await stack.run()).toEqual([]);
  expect(() => process.kill(pid, 0)).toThrow();
  expect(existsSync(s.runDir)).toBe(false);
  expect([...liveChildren()].filter((c) => c.pid === pid)).toEqual([]);
}

describe.runIf(hasGcc)('FirecrackerDriver against the fake Firecracker', () => {
  it('boots through the shared cold-boot steps, runs a command over vsock, and leaves nothing behind', async () => {
    const d = driver();
    const s = spec(d);
    const phases: string[] = [];
    const cleanup = new CleanupStack();
    stacks.push(cleanup);
    const ctx: BootContext = { spec: s, driver: d, cleanup, deadline: performance.now() + 60_000 };
    for (const p of await coldBootSteps().run(ctx)) phases.push(p.name);
    expect(phases).toEqual(['prepare', 'spawn_vmm', 'configure', 'start', 'kernel', 'agent_ready']);
    expect(ctx.hello?.transport).toBeDefined();
    const r = await ctx.agent!.exec({ argv: ['echo', 'hi'] });
    expect(r.stdout.toString()).toBe('hi\n');
    const instance = ctx.instance as FirecrackerInstance;
    expect(instance.accel).toBe('kvm');
    expect(instance.configPhases.map((p) => p.name)).toEqual([
      'api_socket',
      'logger',
      'metrics',
      'machine_config',
      'boot_source',
      'drives',
      'network_interfaces',
      'vsock',
      'entropy',
      'mmds_config',
      'mmds_data',
    ]);

    const metrics = await instance.flushMetrics();
    expect(metrics?.utc_timestamp_ms).toEqual(expect.any(Number));
    expect(instance.metrics).toBe(metrics);
    expect(instance.logTail()).toMatch(/The API server received a Put request on "\/actions"/);

    const fake = report(instance.id);
    expect(fake.violations).toEqual([]);
    expect(operations(fake)).toEqual([
      'putLogger',
      'putMetrics',
      'putMachineConfiguration',
      'putGuestBootSource',
      'putGuestVsock',
      'putEntropyDevice',
      'action:InstanceStart',
      'action:FlushMetrics',
    ]);
    const body = (op: string) => fake.requests.find((q) => q.operationId === op)!.body;
    expect(body('putMachineConfiguration')).toEqual({ smt: false, vcpu_count: 1, mem_size_mib: 256 });
    expect(body('putGuestBootSource')).toEqual({ kernel_image_path: kernel, initrd_path: initrd, boot_args: s.kernelArgs });
    expect(body('putGuestVsock')).toEqual({ guest_cid: 3, uds_path: 'vsock.sock' });
    expect(body('putLogger')).toMatchObject({ log_path: join(s.runDir, 'firecracker.log'), level: 'Info' });
    expect(readFileSync(s.consoleLogPath, 'utf8')).toContain('tfc-init: start');
    await stopAndCheck(ctx, s);
    expect(report(instance.id).exit?.reason).toBe('SIGTERM');
  });

  it('pauses and resumes: a paused guest does not answer, a resumed one does', async () => {
    const d = driver();
    const ctx = await run(coldBootSteps(), spec(d), d);
    await ctx.instance.pause();
    await expect(ctx.agent!.ping({ timeoutMs: 300 })).rejects.toMatchObject({ code: 'AGENT_TIMEOUT' });
    await ctx.instance.resume();
    await expect(ctx.agent!.ping({ timeoutMs: 5_000 })).resolves.toMatchObject({ uptimeMs: expect.any(Number) });
    const fake = report(ctx.instance.id);
    expect(fake.violations).toEqual([]);
    expect(fake.requests.filter((q) => q.operationId === 'patchVm').map((q) => q.body)).toEqual([{ state: 'Paused' }, { state: 'Resumed' }]);
  });

  it('snapshots a paused VM (refusing a running one) and restores independent clones through the restore steps', async () => {
    const d = driver();
    const snapDir = join(scratch, `snap-${seq++}`);
    mkdirSync(snapDir);
    const files: SnapshotFiles = { memoryPath: join(snapDir, 'memory'), statePath: join(snapDir, 'state') };
    const templateSpec = spec(d);
    const template = await run(coldBootSteps(), templateSpec, d);
    await expect(template.instance.createSnapshot(files)).rejects.toMatchObject({ code: 'INVALID_STATE', message: expect.stringMatching(/Running/) });
    await template.instance.pause();
    await template.instance.createSnapshot(files);
    expect(existsSync(files.memoryPath) && existsSync(files.statePath)).toBe(true);
    const templateReport = report(template.instance.id);
    expect(templateReport.violations).toEqual([]);
    expect(templateReport.requests.find((q) => q.operationId === 'createSnapshot')?.body).toEqual({
      snapshot_type: 'Full',
      snapshot_path: files.statePath,
      mem_file_path: files.memoryPath,
    });
    await stopAndCheck(template, templateSpec);

    const cloneSpecs = [spec(d, { restoreFrom: files }), spec(d, { restoreFrom: files })];
    const clones = [];
    for (const s of cloneSpecs) {
      const cleanup = new CleanupStack();
      stacks.push(cleanup);
      const ctx: BootContext = { spec: s, driver: d, cleanup, deadline: performance.now() + 60_000 };
      const phases = (await restoreSteps().run(ctx)).map((p) => p.name);
      expect(phases).toEqual(['prepare', 'spawn_vmm', 'load_snapshot', 'resume', 'agent_ready', 'refresh_guest']);
      clones.push(ctx as BootContext & { instance: FirecrackerInstance });
    }
    for (const [i, clone] of clones.entries()) {
      const r = await clone.agent!.exec({ argv: ['echo', `clone-${i}`] });
      expect(r.stdout.toString()).toBe(`clone-${i}\n`);
      // Each clone's vsock is its own, in its own run dir (relative uds_path, saved in the snapshot).
      expect(existsSync(join(cloneSpecs[i].runDir, 'vsock.sock'))).toBe(true);
      expect(clone.instance.configPhases.map((p) => p.name)).toEqual(['api_socket', 'logger', 'metrics', 'place_drives', 'load_snapshot', 'mmds_data']);
      const fake = report(clone.instance.id);
      expect(fake.violations).toEqual([]);
      expect(operations(fake)).toEqual(['putLogger', 'putMetrics', 'loadSnapshot', 'patchVm']);
      expect(fake.requests.find((q) => q.operationId === 'loadSnapshot')?.body).toEqual({
        snapshot_path: files.statePath,
        mem_backend: { backend_type: 'File', backend_path: files.memoryPath },
        resume_vm: false,
      });
    }
    for (const [i, clone] of clones.entries()) await stopAndCheck(clone, cloneSpecs[i]);
  });

  it('refuses operations in the wrong state with INVALID_STATE', async () => {
    const d = driver();
    const ctx = await run(coldBootSteps(), spec(d), d);
    await expect(ctx.instance.loadSnapshot()).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await expect(ctx.instance.configure()).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await expect(ctx.instance.start()).rejects.toMatchObject({ code: 'INVALID_STATE' });
    const cleanup = new CleanupStack();
    stacks.push(cleanup);
    const s = spec(d);
    mkdirSync(s.runDir, { recursive: true });
    cleanup.push('remove run dir', () => rmSync(s.runDir, { recursive: true, force: true }));
    const fresh = await d.spawn(s, cleanup);
    await expect(fresh.pause()).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await expect(fresh.createSnapshot({ memoryPath: join(s.runDir, 'm'), statePath: join(s.runDir, 's') })).rejects.toMatchObject({ code: 'INVALID_STATE' });
    expect(report(ctx.instance.id).violations).toEqual([]);
    expect(report(fresh.id).violations).toEqual([]);
  });

  it('configures MMDS, network interfaces, drives, entropy and rate limiters through the step list with zero violations', async () => {
    const d = driver();
    const data = join(scratch, `data-${seq++}.ext4`);
    writeFileSync(data, 'x');
    const bucket = { size: 1_048_576, refill_time: 100, one_time_burst: 4_194_304 };
    const s = spec(
      d,
      {},
      {
        machine: { track_dirty_pages: true, huge_pages: 'None' },
        drives: [
          {
            drive_id: 'data',
            path_on_host: data,
            is_root_device: false,
            is_read_only: true,
            rate_limiter: { bandwidth: bucket, ops: { size: 1000, refill_time: 1000 } },
          },
        ],
        networkInterfaces: [
          {
            iface_id: 'eth0',
            host_dev_name: 'tap0',
            guest_mac: '06:00:ac:10:00:02',
            rx_rate_limiter: { bandwidth: bucket },
            tx_rate_limiter: { ops: { size: 500, refill_time: 1000 } },
          },
        ],
        entropy: { rate_limiter: { bandwidth: { size: 1024, refill_time: 100 } } },
        mmds: {
          config: { version: 'V2', network_interfaces: ['eth0'], ipv4_address: '169.254.169.254' },
          data: { latest: { 'meta-data': { 'instance-id': 'i-1' } } },
        },
      },
    );
    const ctx = await run(coldBootSteps(), s, d);
    const api = ctx.instance.api;
    // Post-boot updates: rate limiters and MMDS data.
    await api.patchNetworkInterface('eth0', { iface_id: 'eth0', rx_rate_limiter: { bandwidth: { size: 2048, refill_time: 100 } } });
    await api.patchDrive('data', { drive_id: 'data', rate_limiter: { ops: { size: 10, refill_time: 1000 } } });
    await api.patchMmds({ latest: { 'meta-data': { hostname: 'vm' } } });
    expect(await api.getMmds()).toEqual({ latest: { 'meta-data': { 'instance-id': 'i-1', hostname: 'vm' } } });
    const fake = report(ctx.instance.id);
    expect(fake.violations).toEqual([]);
    expect(operations(fake)).toEqual([
      'putLogger',
      'putMetrics',
      'putMachineConfiguration',
      'putGuestBootSource',
      'putGuestDriveByID',
      'putGuestNetworkInterfaceByID',
      'putGuestVsock',
      'putEntropyDevice',
      'putMmdsConfig',
      'putMmds',
      'action:InstanceStart',
      'patchGuestNetworkInterfaceByID',
      'patchGuestDriveByID',
      'patchMmds',
      'getMmds',
    ]);
    expect(fake.requests.find((q) => q.operationId === 'putGuestDriveByID')).toMatchObject({
      path: '/drives/data',
      body: { path_on_host: data, is_read_only: true },
    });
    expect(fake.requests.find((q) => q.operationId === 'putMachineConfiguration')?.body).toEqual({
      smt: false,
      track_dirty_pages: true,
      huge_pages: 'None',
      vcpu_count: 1,
      mem_size_mib: 256,
    });
  });

  it('returns Firecracker refusals as FirecrackerApiError carrying its fault_message, naming the step', async () => {
    const d = driver();
    const cases: Array<{ spec: FirecrackerLaunchSpec; step: string; fault: RegExp }> = [
      { spec: spec(d, { vcpus: 0 }), step: 'machine_config', fault: /vcpu_count must be >= 1/ },
      { spec: spec(d, { memoryMib: 0 }), step: 'machine_config', fault: /memory size \(MiB\) is invalid/ },
      { spec: spec(d, { kernelPath: join(scratch, 'no-such-vmlinux') }), step: 'boot_source', fault: /kernel file cannot be opened/ },
      {
        spec: spec(d, {}, { mmds: { config: { network_interfaces: ['eth9'] } } }),
        step: 'mmds_config',
        fault: /does not correspond to any existing network interface/,
      },
      {
        spec: spec(d, {}, { networkInterfaces: [{ iface_id: 'eth0', host_dev_name: 'tap0', rx_rate_limiter: { bandwidth: { size: -1, refill_time: 100 } } }] }),
        step: 'network_interfaces',
        fault: /size must be >= 0/,
      },
    ];
    for (const c of cases) {
      const err = await run(coldBootSteps(), c.spec, d).then(
        () => null,
        (e: unknown) => e,
      );
      // The boot runner names its step; the configuration step is in the refusal's details.
      expect(err).toBeInstanceOf(StepFailedError);
      expect((err as StepFailedError).step).toBe('configure');
      const apiErr = (err as StepFailedError).cause as FirecrackerApiError;
      expect(apiErr).toBeInstanceOf(FirecrackerApiError);
      expect(apiErr.code).toBe('FIRECRACKER_API_ERROR');
      expect(apiErr.httpStatus).toBe(400);
      expect(apiErr.faultMessage).toMatch(c.fault);
      expect(apiErr.message).toContain(apiErr.faultMessage!);
      expect(apiErr.toJSON()).toMatchObject({ code: 'FIRECRACKER_API_ERROR', details: { step: c.step, httpStatus: 400, faultMessage: apiErr.faultMessage } });
      await stacks.pop()!.run();
      const id = c.spec.vmId;
      const fake = report(id);
      expect(fake.violations).toHaveLength(1);
      expect(fake.violations[0].message).toMatch(c.fault);
      expect(existsSync(c.spec.runDir)).toBe(false);
    }
  });

  it.runIf(canNetns)('runs in the VM network namespace of spec.network, with eth0 on its TAP', async () => {
    const d = driver();
    const netns = `tfc-fct-${process.pid}-${seq++}`;
    await runCommand('ip', ['netns', 'add', netns]);
    const cleanup = new CleanupStack();
    stacks.push(cleanup);
    cleanup.push(`delete netns ${netns}`, () => runCommand('ip', ['netns', 'del', netns], { allowFailure: true }));
    const s = spec(d, { network: { netns, tapName: 'tap0', guestMac: '06:00:ac:10:00:02' } });
    const ctx = await run(coldBootSteps(), s, d);
    // The process (nsenter execs it in place: same pid) lives in the namespace.
    expect(statSync(`/proc/${ctx.instance.pid}/ns/net`).ino).toBe(statSync(`/var/run/netns/${netns}`).ino);
    const fake = report(ctx.instance.id);
    expect(fake.violations).toEqual([]);
    expect(fake.requests.find((q) => q.operationId === 'putGuestNetworkInterfaceByID')).toMatchObject({
      path: '/network-interfaces/eth0',
      body: { iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '06:00:ac:10:00:02' },
    });
    expect((await ctx.agent!.exec({ argv: ['echo', 'in-netns'] })).stdout.toString()).toBe('in-netns\n');
  });

  it('reads metrics through a FIFO as well as a file', async () => {
    const d = driver({ metricsSink: 'fifo' });
    const s = spec(d);
    const ctx = await run(coldBootSteps(), s, d);
    const first = await ctx.instance.flushMetrics();
    const second = await ctx.instance.flushMetrics();
    expect(first?.put_api_requests).toMatchObject({ actions_count: 1 });
    expect(second?.put_api_requests).toMatchObject({ actions_count: 1 }); // deltas since the previous line
    expect(second!.utc_timestamp_ms).toBeGreaterThanOrEqual(first!.utc_timestamp_ms);
    expect(report(ctx.instance.id).requests.find((q) => q.operationId === 'putMetrics')?.body).toEqual({ metrics_path: join(s.runDir, 'metrics.fifo') });
  });
});

describe('FirecrackerDriver failures', () => {
  it('a binary that is not found is VMM_BINARY_NOT_FOUND with the install hint, from probe and spawn', async () => {
    const d = new FirecrackerDriver({ binary: join(tmpdir(), 'no-such-firecracker') });
    await expect(d.probe()).rejects.toMatchObject({ code: 'VMM_BINARY_NOT_FOUND', message: expect.stringMatching(/release tarball.*FIRECRACKER_BIN/) });
    const cleanup = new CleanupStack();
    await expect(d.spawn(spec(d), cleanup)).rejects.toMatchObject({ code: 'VMM_BINARY_NOT_FOUND' });
    expect(cleanup.pending()).toEqual([]);
  });

  it('probes the version and always reports KVM, recording (not judging) the host', async () => {
    const d = new FirecrackerDriver({
      binary: FAKE,
      kvmFacts: { devicePresent: true, deviceUsable: true, pvmLoaded: true },
      env: { ...process.env, FAKE_FC_VERSION: '1.17.0-dev' },
    });
    const info = await d.probe();
    expect(info).toMatchObject({ name: 'firecracker', binary: FAKE, version: '1.17.0-dev', accel: 'kvm' });
    expect(info.accelReason).toMatch(/nested PVM/);
    expect(d.baseKernelArgs()).toBe('console=ttyS0 reboot=k panic=1 tfc.agent=vsock tfc.agent_port=1024');
  });

  it('Firecracker exiting during start-up is VMM_EXITED with its own message', async () => {
    const d = driver();
    const s = spec(d);
    mkdirSync(s.runDir, { recursive: true });
    writeFileSync(join(s.runDir, 'firecracker.sock'), ''); // Firecracker cannot bind its API socket over an existing file
    const cleanup = new CleanupStack();
    stacks.push(cleanup);
    cleanup.push('remove run dir', () => rmSync(s.runDir, { recursive: true, force: true }));
    await expect(d.spawn(s, cleanup)).rejects.toMatchObject({
      code: 'VMM_EXITED',
      message: expect.stringMatching(/exit code 1[\s\S]*Failed to open the API socket/),
    });
    await cleanup.run();
    expect(readdirSync(join(scratch, 'run'))).not.toContain(s.vmId);
  });

  it('refuses snapshot files that do not exist before starting anything', async () => {
    const d = driver();
    const cleanup = new CleanupStack();
    const s = spec(d, { restoreFrom: { memoryPath: join(scratch, 'none.mem'), statePath: join(scratch, 'none.state') } });
    await expect(d.spawn(s, cleanup)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(cleanup.pending()).toEqual([]);
  });
});
