/**
 * The client against the fake Firecracker (test/fake-firecracker), a real
 * child process on a real Unix socket: Firecracker's boot sequence, pause,
 * snapshots and its refusals, with the fake's report as the judge. Every
 * spawned fake and temp dir is removed after each test, pass or fail.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../../guest/agent-client.js';
import { buildAgent } from '../../guest/agent-build.js';
import { FirecrackerApiClient, waitForSocket } from './api-client.js';
import { FirecrackerApiError } from './api-errors.js';
import type { BootSource, MachineConfiguration } from './api.gen.js';
import { loadFirecrackerSpec, type SpecViolation } from './spec.js';

const FAKE = fileURLToPath(new URL('../../../test/fake-firecracker/fake-firecracker.mjs', import.meta.url));
const FAKE_VALIDATOR = fileURLToPath(new URL('../../../test/fake-firecracker/spec-validator.mjs', import.meta.url));
const hasGcc = spawnSync('gcc', ['--version']).status === 0;
if (!hasGcc) console.warn('skipping the fake vsock + guest agent test: gcc is not installed (apt-get install gcc libc6-dev)');

interface FakeReport {
  exit: { reason: string } | null;
  vmState: string;
  requests: { method: string; path: string; operationId: string | null; status: number; faultMessage?: string }[];
  violations: { kind: string; rule?: string; message: string; operationId: string | null }[];
  events: { event: string; port?: number; accepted?: boolean; code?: number | null }[];
}

interface Fake {
  dir: string;
  apiSock: string;
  child: ChildProcess;
  client: FirecrackerApiClient;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  report(): FakeReport;
  /** SIGTERM, wait for exit 0, return the final report. */
  stop(): Promise<FakeReport>;
}

const dirs = new Set<string>();
const live = new Set<Fake>();

afterEach(async () => {
  for (const f of live) {
    f.client.close();
    if (f.child.exitCode === null && f.child.signalCode === null) {
      // SIGTERM first so the fake stops its guest agent; SIGKILL if it does not go.
      f.child.kill('SIGTERM');
      const timer = setTimeout(() => f.child.kill('SIGKILL'), 3_000);
      await f.exited;
      clearTimeout(timer);
    }
  }
  live.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'fake-fc-'));
  dirs.add(d);
  return d;
}

function runFake(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [FAKE, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

async function startFake(env: NodeJS.ProcessEnv = {}, dir = tempDir()): Promise<Fake> {
  const apiSock = join(dir, 'api.sock');
  const reportPath = join(dir, 'report.json');
  const child = runFake(['--api-sock', apiSock, '--id', 'vm_test', '--level', 'Debug', '--no-seccomp', '--boot-timer'], {
    FAKE_FC_REPORT: reportPath,
    ...env,
  });
  const exited = exitOf(child);
  const died = new AbortController();
  void exited.then((e) => died.abort(new Error(`fake firecracker exited early (${e.code ?? e.signal}): ${e.stderr}`)));
  const fake: Fake = {
    dir,
    apiSock,
    child,
    exited,
    client: new FirecrackerApiClient({ socketPath: apiSock, timeoutMs: 10_000 }),
    report: () => JSON.parse(readFileSync(reportPath, 'utf8')) as FakeReport,
    async stop() {
      child.kill('SIGTERM');
      expect((await exited).code).toBe(0);
      return fake.report();
    },
  };
  live.add(fake);
  await waitForSocket(apiSock, { timeoutMs: 15_000, signal: died.signal });
  return fake;
}

/** The fake's verdict on a test that should have sent nothing wrong. */
function expectNoViolations(report: FakeReport): void {
  expect(report.violations).toEqual([]);
}

/** Files the fake checks exist, as Firecracker opens them. */
function hostFiles(dir: string): { kernel: string; rootfs: string; data: string } {
  const files = { kernel: join(dir, 'vmlinux'), rootfs: join(dir, 'rootfs.ext4'), data: join(dir, 'data.ext4') };
  for (const f of Object.values(files)) writeFileSync(f, 'x');
  return files;
}

const bucket = { size: 10_485_760, one_time_burst: 1_048_576, refill_time: 100 };

/** The whole pre-boot configuration a driver sends, then InstanceStart. */
async function bootFully(fake: Fake, extra: { bootArgs?: string; machine?: Partial<MachineConfiguration> } = {}): Promise<void> {
  const c = fake.client;
  const f = hostFiles(fake.dir);
  await c.putLogger({ log_path: join(fake.dir, 'fc.log'), level: 'Info', show_level: true });
  await c.putMetrics({ metrics_path: join(fake.dir, 'fc.metrics'), emit_id: true });
  await c.putMachineConfig({ vcpu_count: 2, mem_size_mib: 256, smt: false, track_dirty_pages: true, ...extra.machine });
  await c.putBootSource({ kernel_image_path: f.kernel, boot_args: extra.bootArgs ?? 'console=ttyS0 reboot=k panic=1' });
  await c.putDrive('rootfs', { drive_id: 'rootfs', path_on_host: f.rootfs, is_root_device: true, is_read_only: true });
  await c.putDrive('data', {
    drive_id: 'data',
    path_on_host: f.data,
    is_root_device: false,
    is_read_only: false,
    rate_limiter: { bandwidth: bucket, ops: { size: 1000, refill_time: 1000 } },
  });
  await c.putNetworkInterface('eth0', {
    iface_id: 'eth0',
    host_dev_name: 'tap0',
    guest_mac: '06:00:ac:10:00:02',
    rx_rate_limiter: { bandwidth: bucket },
    tx_rate_limiter: { ops: { size: 500, refill_time: 100 } },
  });
  await c.putVsock({ guest_cid: 3, uds_path: join(fake.dir, 'v.sock') });
  await c.putEntropy({ rate_limiter: { bandwidth: bucket } });
  await c.putMmdsConfig({ version: 'V2', network_interfaces: ['eth0'], ipv4_address: '169.254.169.254' });
  await c.putMmds({ latest: { 'meta-data': { 'instance-id': 'vm_test' } } });
  await c.instanceStart();
}

describe('fake firecracker command line', () => {
  it("prints its version, refuses --config-file and unknown flags, accepts Firecracker's other flags", async () => {
    const version = await exitOf(runFake(['--version']));
    expect(version).toMatchObject({ code: 0, stdout: 'Firecracker v1.12.0\n' });
    const config = await exitOf(runFake(['--api-sock', join(tempDir(), 'a.sock'), '--config-file', 'vm.json']));
    expect(config.code).toBe(1);
    expect(config.stderr).toContain('--config-file');
    const unknown = await exitOf(runFake(['--api-sock', join(tempDir(), 'b.sock'), '--bogus']));
    expect(unknown.code).toBe(1);
    const dir = tempDir();
    const fake = await startFake({}, dir);
    const other = runFake(['--api-sock', join(dir, 'c.sock'), '--log-path', join(dir, 'l'), '--show-level', '--show-log-origin', '--seccomp-filter', 'f.bpf']);
    const otherExit = exitOf(other);
    await waitForSocket(join(dir, 'c.sock'), { timeoutMs: 15_000 });
    other.kill('SIGTERM');
    expect((await otherExit).code).toBe(0);
    expect(await fake.client.describeInstance()).toEqual({ id: 'vm_test', state: 'Not started', vmm_version: '1.12.0', app_name: 'Firecracker' });
  });

  it('refuses to start on an API socket that already exists', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'api.sock'), '');
    const r = await exitOf(runFake(['--api-sock', join(dir, 'api.sock')]));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Failed to open the API socket');
  });
});

describe('fake firecracker boot', () => {
  it('accepts a full boot configuration with zero violations, and its answers match the spec', async () => {
    const fake = await startFake();
    const spec = loadFirecrackerSpec();
    const c = fake.client;
    expect(await c.getMachineConfig()).toMatchObject({ vcpu_count: 1, mem_size_mib: 128 }); // Firecracker's defaults
    await bootFully(fake);
    await c.patchDrive('data', { drive_id: 'data', rate_limiter: { ops: { size: 2000, refill_time: 1000 } } });
    await c.patchNetworkInterface('eth0', { iface_id: 'eth0', rx_rate_limiter: { ops: { size: 100, refill_time: 100 } } });
    await c.patchMmds({ latest: { 'meta-data': { hostname: 'vm' } } });
    await c.flushMetrics();
    await c.flushMetrics();

    const answers: [string, string, unknown][] = [
      ['GET', '/', await c.describeInstance()],
      ['GET', '/version', await c.getVersion()],
      ['GET', '/machine-config', await c.getMachineConfig()],
      ['GET', '/vm/config', await c.getVmConfig()],
      ['GET', '/mmds', await c.getMmds()],
    ];
    for (const [method, path, body] of answers) expect(spec.validateResponse(method, path, 200, body), `${method} ${path}`).toEqual([]);
    expect(answers[0]![2]).toMatchObject({ state: 'Running' });
    const vmConfig = answers[3]![2] as Record<string, unknown>;
    expect(vmConfig['network-interfaces']).toMatchObject([{ iface_id: 'eth0', host_dev_name: 'tap0' }]);
    expect(vmConfig['drives']).toHaveLength(2);
    expect(await c.getMmds()).toEqual({ latest: { 'meta-data': { 'instance-id': 'vm_test', hostname: 'vm' } } });

    const metrics = readFileSync(join(fake.dir, 'fc.metrics'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { put_api_requests: { drive_count: number }; utc_timestamp_ms: unknown });
    expect(metrics).toHaveLength(2);
    expect(metrics[0]).toMatchObject({ id: 'vm_test', api_server: { sync_response_fails: 0 }, vmm: { panic_count: 0 } });
    expect(metrics[0]!.put_api_requests.drive_count).toBe(2);
    expect(metrics[1]!.put_api_requests.drive_count).toBe(0); // counters are deltas since the last flush
    expect(typeof metrics[0]!.utc_timestamp_ms).toBe('number');
    expect(readFileSync(join(fake.dir, 'fc.log'), 'utf8')).toContain('[vm_test:fc_api:INFO] The API server received a Put request on "/actions"');

    const report = await fake.stop();
    expectNoViolations(report);
    expect(report.exit?.reason).toBe('SIGTERM');
    expect(report.requests.map((r) => r.operationId)).toContain('putGuestNetworkInterfaceByID');
  });

  it('pauses and resumes only after start', async () => {
    const fake = await startFake();
    const c = fake.client;
    await expect(c.pauseVm()).rejects.toMatchObject({ faultMessage: 'The requested operation is not supported before starting the microVM.' });
    await c.putBootSource({ kernel_image_path: hostFiles(fake.dir).kernel });
    await c.instanceStart();
    await c.pauseVm();
    expect((await c.describeInstance()).state).toBe('Paused');
    await c.resumeVm();
    expect((await c.describeInstance()).state).toBe('Running');
    expect((await fake.stop()).violations).toMatchObject([{ rule: 'post-boot-only', operationId: 'patchVm' }]);
  });
});

describe('fake firecracker snapshots', () => {
  it('creates Full and Diff snapshots, and loads them with File and Uffd backends', async () => {
    const source = await startFake();
    await bootFully(source);
    const c = source.client;
    await c.pauseVm();
    const full = { snapshot_path: join(source.dir, 'full.snap'), mem_file_path: join(source.dir, 'full.mem') };
    await c.createSnapshot({ ...full, snapshot_type: 'Full' });
    await c.createSnapshot({ snapshot_path: join(source.dir, 'diff.snap'), mem_file_path: join(source.dir, 'diff.mem'), snapshot_type: 'Diff' });
    for (const f of ['full.snap', 'full.mem', 'diff.snap', 'diff.mem']) expect(existsSync(join(source.dir, f)), f).toBe(true);
    await c.resumeVm();
    expectNoViolations(await source.stop());

    // A clone: logger and metrics first (not part of a snapshot), then load with a new TAP and vsock path.
    const clone = await startFake();
    await clone.client.putLogger({ log_path: join(clone.dir, 'fc.log') });
    await clone.client.putMetrics({ metrics_path: join(clone.dir, 'fc.metrics') });
    await clone.client.loadSnapshot({
      snapshot_path: full.snapshot_path,
      mem_backend: { backend_type: 'File', backend_path: full.mem_file_path },
      track_dirty_pages: true,
      resume_vm: true,
      network_overrides: [{ iface_id: 'eth0', host_dev_name: 'tap_clone' }],
      vsock_override: { uds_path: join(clone.dir, 'v.sock') },
    });
    expect((await clone.client.describeInstance()).state).toBe('Running');
    const cfg = await clone.client.getVmConfig();
    expect(cfg['network-interfaces']).toMatchObject([{ iface_id: 'eth0', host_dev_name: 'tap_clone' }]);
    expect(cfg['machine-config']).toMatchObject({ vcpu_count: 2, mem_size_mib: 256, track_dirty_pages: true });
    expect(cfg['boot-source']).toBeUndefined();
    expect(existsSync(join(clone.dir, 'v.sock'))).toBe(true);
    await expect(clone.client.putDrive('x', { drive_id: 'x', is_root_device: false, path_on_host: full.mem_file_path })).rejects.toBeInstanceOf(
      FirecrackerApiError,
    );
    await clone.client.pauseVm();
    await clone.client.createSnapshot({ snapshot_path: join(clone.dir, 'again.snap'), mem_file_path: join(clone.dir, 'again.mem'), snapshot_type: 'Diff' });
    expect((await clone.stop()).violations.map((v) => v.rule)).toEqual(['pre-boot-only']);

    const uffd = await startFake();
    await uffd.client.loadSnapshot({
      snapshot_path: join(source.dir, 'diff.snap'),
      mem_backend: { backend_type: 'Uffd', backend_path: join(source.dir, 'diff.mem') },
    });
    expect((await uffd.client.describeInstance()).state).toBe('Paused');
    expectNoViolations(await uffd.stop());
  });

  it('leaves the process unusable after a failed load', async () => {
    const fake = await startFake();
    const missing = join(fake.dir, 'missing.snap');
    await expect(fake.client.loadSnapshot({ snapshot_path: missing, mem_backend: { backend_type: 'File', backend_path: missing } })).rejects.toMatchObject({
      faultMessage: expect.stringContaining('Failed to open snapshot file'),
    });
    await expect(fake.client.describeInstance()).rejects.toMatchObject({ httpStatus: 400, faultMessage: expect.stringContaining('unusable') });
  });
});

describe('fake firecracker refusals come back as FirecrackerApiError with the fault message', () => {
  async function refusal(p: Promise<unknown>): Promise<string> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FirecrackerApiError);
    return (err as FirecrackerApiError).faultMessage ?? '';
  }

  it('refuses bad bodies, id mismatches, pre-boot calls after start, snapshots while running, and late loads', async () => {
    const fake = await startFake();
    const c = fake.client;
    const kernel = hostFiles(fake.dir).kernel;
    expect(await refusal(c.putMachineConfig({ vcpu_count: 0, mem_size_mib: 128 }))).toBe(
      'An error occurred when deserializing the json body of a request: /vcpu_count must be >= 1.',
    );
    expect(await refusal(c.putBootSource({ boot_args: 'console=ttyS0' } as unknown as BootSource))).toContain(
      "must have required property 'kernel_image_path'",
    );
    expect(await refusal(c.putDrive('rootfs', { drive_id: 'root', path_on_host: kernel, is_root_device: true }))).toBe(
      'The id from the path does not match the id from the body!',
    );
    expect(await refusal(c.instanceStart())).toBe('Start microvm error: Cannot start microvm without kernel configuration.');
    await c.putBootSource({ kernel_image_path: kernel });
    await c.putNetworkInterface('eth0', { iface_id: 'eth0', host_dev_name: 'tap0' });
    await c.instanceStart();
    expect(await refusal(c.putNetworkInterface('eth1', { iface_id: 'eth1', host_dev_name: 'tap1' }))).toBe(
      'The requested operation is not supported after starting the microVM.',
    );
    expect(await refusal(c.createSnapshot({ snapshot_path: join(fake.dir, 's'), mem_file_path: join(fake.dir, 'm') }))).toContain('must be paused');
    expect(existsSync(join(fake.dir, 's'))).toBe(false);

    const fresh = await startFake();
    await fresh.client.putBootSource({ kernel_image_path: kernel });
    expect(await refusal(fresh.client.loadSnapshot({ snapshot_path: 's', mem_backend: { backend_type: 'File', backend_path: 'm' } }))).toBe(
      'Load snapshot error: Loading a microVM snapshot not allowed after configuring boot-specific resources.',
    );
    await fresh.client.instanceStart(); // a refused load on a configured process is not fatal

    expect((await fake.stop()).violations.map((v) => v.rule ?? v.kind)).toEqual([
      'schema',
      'schema',
      'path-body-id-mismatch',
      'missing-boot-source',
      'pre-boot-only',
      'snapshot-create-requires-paused',
    ]);
  });

  it('answers unknown paths like Firecracker', async () => {
    const fake = await startFake();
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ socketPath: fake.apiSock, path: '/snapshots', method: 'GET' }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(answer).toEqual({ status: 400, body: '{"fault_message":"Invalid request method and/or path: GET /snapshots."}' });
  });

  it('exits 0 with its report after SendCtrlAltDel', async () => {
    const fake = await startFake();
    await fake.client.putBootSource({ kernel_image_path: hostFiles(fake.dir).kernel });
    await fake.client.instanceStart();
    await fake.client.sendCtrlAltDel();
    expect((await fake.exited).code).toBe(0);
    expect(fake.report().exit?.reason).toBe('SendCtrlAltDel');
  });
});

/** Host side of the hybrid vsock handshake; resolves with the answer line, or null when the fake closed the connection. */
function vsockConnect(udsPath: string, port: number): Promise<{ line: string | null; socket: net.Socket }> {
  return new Promise((resolve) => {
    const socket = net.connect(udsPath, () => socket.write(`CONNECT ${port}\n`));
    let buf = '';
    const onData = (c: Buffer) => {
      buf += c.toString('latin1');
      if (buf.includes('\n')) {
        socket.pause();
        socket.off('data', onData);
        resolve({ line: buf.slice(0, buf.indexOf('\n')), socket });
      }
    };
    socket.on('data', onData);
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ line: null, socket }));
  });
}

describe('fake firecracker vsock', () => {
  it('closes a CONNECT to a port nothing listens on', async () => {
    const fake = await startFake();
    await bootFully(fake);
    const { line, socket } = await vsockConnect(join(fake.dir, 'v.sock'), 52);
    socket.destroy();
    expect(line).toBeNull();
    expect((await fake.stop()).events).toContainEqual(expect.objectContaining({ event: 'vsock-connect', port: 52, accepted: false }));
  });

  it.skipIf(!hasGcc)(
    'bridges CONNECT <port> to the guest agent, and exits when the guest shuts down',
    async () => {
      const agentDir = tempDir();
      const agentBinary = join(agentDir, 'tfc-agent');
      await buildAgent(agentBinary);
      const fake = await startFake({ FAKE_FC_GUEST_AGENT: agentBinary });
      await bootFully(fake, { bootArgs: 'console=ttyS0 tfc.agent=vsock tfc.agent_port=1025' });
      const deadline = Date.now() + 15_000;
      let connected: { line: string | null; socket: net.Socket };
      for (;;) {
        connected = await vsockConnect(join(fake.dir, 'v.sock'), 1025);
        if (connected.line !== null || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 20)); // the "guest" agent is still starting
      }
      expect(connected.line).toMatch(/^OK \d+$/);
      const agent = new AgentClient(connected.socket, { defaultTimeoutMs: 10_000 });
      connected.socket.resume();
      expect((await agent.hello()).protocol).toBe(1);
      await agent.shutdown('poweroff');
      expect((await fake.exited).code).toBe(0);
      const report = fake.report();
      expect(report.exit?.reason).toContain('guest shut down');
      expectNoViolations(report);
    },
    120_000,
  );
});

describe('fake firecracker validation is the same as spec.ts', () => {
  interface FakeValidator {
    loadSpec(): { validateRequest(method: string, path: string, body: unknown): SpecViolation[] };
  }

  it('reports identical violations for valid and invalid bodies of every operation', async () => {
    const twin = ((await import(pathToFileURL(FAKE_VALIDATOR).href)) as FakeValidator).loadSpec();
    const spec = loadFirecrackerSpec();
    const bodies: unknown[] = [
      undefined,
      {},
      { unknown_field: 1 },
      [],
      'text',
      7,
      { drive_id: 3, is_root_device: 'yes' },
      { vcpu_count: 0, mem_size_mib: -1, smt: 'no' },
    ];
    let compared = 0;
    for (const op of spec.operations) {
      const path = op.path.replace(/\{[^}]+\}/g, 'id_1');
      for (const body of bodies) {
        expect(twin.validateRequest(op.method, path, body), `${op.method} ${path} ${JSON.stringify(body)}`).toEqual(
          spec.validateRequest(op.method, path, body),
        );
        compared++;
      }
    }
    expect(twin.validateRequest('DELETE', '/x', undefined)).toEqual(spec.validateRequest('DELETE', '/x', undefined));
    expect(compared).toBeGreaterThan(100);
  });
});
