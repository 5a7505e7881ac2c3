import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../../src/guest/agent-build.js';
import { REPO, assertNothingLeft, runTfc, scratchDir, testDataDir, writeConfig } from '../helpers.js';

/**
 * The user's path with `--driver firecracker` on a host without Firecracker:
 * the real `tfc` binary (dist/, built by `npm run build`) drives the fake
 * Firecracker (FIRECRACKER_BIN), whose "guest" is a host build of the agent.
 * Proves the CLI, VmService, the driver and the vsock agent channel work
 * together, that the fake saw nothing Firecracker would refuse, and that
 * nothing is left behind. Real guests: test/driver-contract/firecracker.test.ts.
 */
const FAKE = join(REPO, 'test', 'fake-firecracker', 'fake-firecracker.mjs');
const built = existsSync(join(REPO, 'dist', 'vmm', 'firecracker', 'driver.js'));
const hasGcc = spawnSync('gcc', ['--version']).status === 0;
const skip = !built ? 'dist/ has no Firecracker driver: run `npm run build` first' : !hasGcc ? 'gcc is not installed (apt-get install gcc libc6-dev)' : null;
if (skip) process.stderr.write(`[firecracker-cli] skipped: ${skip}\n`);

interface FakeReport {
  pid: number;
  exit: { reason: string } | null;
  violations: unknown[];
  requests: { operationId: string | null }[];
}

describe.skipIf(skip !== null)('tfc vm run --driver firecracker (fake Firecracker)', () => {
  const scratch = scratchDir('tfc-fc-cli-');
  const agent = join(scratch.path, 'tfc-agent');
  const reports = join(scratch.path, 'reports');
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    await buildAgent(agent);
    mkdirSync(reports);
    // The jailer (on by default) has its own tests with the fake jailer (src/vmm/firecracker/jailer.test.ts); here Firecracker runs plain.
    const configPath = writeConfig(scratch.path, '[vmm.firecracker.jailer]\nenabled = false\n');
    env = { FIRECRACKER_BIN: FAKE, FAKE_FC_GUEST_AGENT: agent, FAKE_FC_REPORT: join(reports, '{id}.json'), TFC_CONFIG: configPath };
  }, 300_000);

  afterEach(async () => {
    await assertNothingLeft(testDataDir());
    for (const file of readdirSync(reports)) {
      const report = JSON.parse(readFileSync(join(reports, file), 'utf8')) as FakeReport;
      expect(() => process.kill(report.pid, 0), `fake Firecracker pid ${report.pid} still running`).toThrow();
    }
  });

  afterAll(() => scratch.remove());

  function reportOf(vmId: string): FakeReport {
    return JSON.parse(readFileSync(join(reports, `${vmId}.json`), 'utf8')) as FakeReport;
  }

  it('runs `echo hi` in a fresh Firecracker VM and exits 0', async () => {
    const r = await runTfc(['vm', 'run', '--driver', 'firecracker', '--', 'echo', 'hi'], { env });
    expect(r.stderr).toMatch(/\(firecracker, kvm, cold boot\) exit 0/);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hi\n');
    const vmId = /vm (vm-[0-9a-f]{12}) /.exec(r.stderr)![1];
    const report = reportOf(vmId);
    expect(report.violations).toEqual([]);
    // Stopped the way a VM stops: the agent shut the guest down, and Firecracker exited with it.
    expect(report.exit?.reason).toMatch(/guest shut down|SIGTERM/);
  });

  it('--json names the driver and the shared boot phases, and propagates the exit code', async () => {
    const r = await runTfc(['vm', 'run', '--json', '--driver', 'firecracker', '--vcpus', '2', '--memory-mib', '192', '--', 'sh', '-c', 'echo out; exit 3'], {
      env,
    });
    expect(r.code).toBe(3);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ driver: 'firecracker', accel: 'kvm', exit_code: 3, stdout: 'out\n', created_by: 'boot' });
    expect(out.timings.phases.map((p: { name: string }) => p.name)).toEqual([
      'prepare',
      'spawn_vmm',
      'configure',
      'start',
      'kernel',
      'agent_ready',
      'exec',
      'stop',
    ]);
    const report = JSON.parse(readFileSync(join(reports, `${out.vm_id}.json`), 'utf8'));
    expect(report.violations).toEqual([]);
    expect(report.requests.find((q: { operationId: string }) => q.operationId === 'putMachineConfiguration').body).toMatchObject({
      vcpu_count: 2,
      mem_size_mib: 192,
    });
  });

  it('without Firecracker installed, fails with VMM_BINARY_NOT_FOUND and says how to install it', async () => {
    const r = await runTfc(['vm', 'run', '--driver', 'firecracker', '--', 'echo', 'hi'], {
      env: { ...env, FIRECRACKER_BIN: join(scratch.path, 'no-such-firecracker') },
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('VMM_BINARY_NOT_FOUND');
    expect(r.stderr).toMatch(/release tarball .*FIRECRACKER_BIN/);
    expect(r.stdout).toBe('');
  });
});
