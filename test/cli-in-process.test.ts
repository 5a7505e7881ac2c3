import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli, startCli } from '../src/testing/run-cli.js';
import { qemuProcessesUsing, scratchDir, testDataDir, writeConfig } from './helpers.js';

// `tfc vm run` through the CLI entry point in this process (the spawned
// binary is tested in vm-run-cli.test.ts): one real VM per test under QEMU,
// destroyed by the command itself.

describe('tfc vm run (in-process, real VMs)', () => {
  beforeAll(() => {
    vi.stubEnv('TFC_DATA_DIR', testDataDir());
    vi.stubEnv('TFC_CONFIG', '');
  });
  afterAll(() => {
    vi.unstubAllEnvs();
  });
  // Other users of this machine may run VMs in the same data dir, so check
  // only for what the VM of this test would leave.
  let vmId: string | undefined;
  afterEach(async () => {
    if (!vmId) return;
    const id = vmId;
    vmId = undefined;
    expect(await qemuProcessesUsing(`tfc-${id} `)).toEqual([]);
    expect(existsSync(join(testDataDir(), 'run', 'vms', id))).toBe(false);
  });

  it("passes the guest command's stdout, stderr and exit code through and prints the phase table", async () => {
    const r = await runCli(['vm', 'run', '--memory-mib', '160', '--', 'sh', '-c', 'echo out; echo err >&2; exit 5']);
    expect(r.code).toBe(5);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toMatch(/^err\n/);
    vmId = /vm (vm-[0-9a-f]{12}) \(/.exec(r.stderr)?.[1];
    expect(r.stderr).toMatch(/vm vm-[0-9a-f]{12} \(qemu, (tcg|kvm), cold boot\) exit 5/);
    for (const phase of ['spawn_vmm', 'kernel', 'agent_ready', 'exec', 'stop', 'total']) expect(r.stderr).toContain(phase);
  });

  it('--json reports a command missing in the guest as exit 127 with its error', async () => {
    const r = await runCli(['vm', 'run', '--json', '--', 'definitely-not-a-command']);
    expect(r.code).toBe(127);
    const out = JSON.parse(r.stdout);
    vmId = out.vm_id;
    expect(out).toMatchObject({ exit_code: 127, timed_out: false, stdout: '', error: { code: 'GUEST_COMMAND_NOT_FOUND' } });
    expect(out.stderr).toMatch(/definitely-not-a-command/);
    expect(out.timings.phases.map((p: { name: string }) => p.name)).toContain('agent_ready');
  });
});

describe('tfc snapshot create (in-process)', () => {
  beforeAll(() => {
    vi.stubEnv('TFC_DATA_DIR', testDataDir());
    vi.stubEnv('TFC_CONFIG', '');
  });
  afterAll(() => {
    vi.unstubAllEnvs();
  });

  it('makes or finds the golden snapshot of the default profile and lists it as current', async () => {
    const made = await runCli(['snapshot', 'create']);
    expect(made.code).toBe(0);
    expect(made.stdout).toMatch(
      /^snapshot [0-9a-f]{16} of profile minimal \(qemu [\d.]+, (tcg|kvm)\); made in [\d.]+ ms\n {2}.*snapshots\/minimal-[0-9a-f]{16}\n$/,
    );
    const key = /^snapshot ([0-9a-f]{16})/.exec(made.stdout)![1];
    // A second create finds the same one.
    const json = JSON.parse((await runCli(['snapshot', 'create', '--json'])).stdout) as {
      key: string;
      profile: string;
      create_phases: Array<{ name: string }>;
    };
    expect(json.key.startsWith(key)).toBe(true);
    expect(json.create_phases.map((p) => p.name)).toEqual(expect.arrayContaining(['agent_ready', 'pause', 'snapshot']));
    const listed = JSON.parse((await runCli(['snapshot', 'ls', '--json'])).stdout) as Array<{ key: string; stale: boolean }>;
    expect(listed.find((s) => s.key === json.key)?.stale).toBe(false);
  }, 300_000);
});

describe('tfc serve (in-process)', () => {
  // Made in beforeAll, not at collection: a filtered run skips this suite's hooks.
  let dir: ReturnType<typeof scratchDir> | undefined;
  beforeAll(() => {
    dir = scratchDir();
  });
  afterAll(() => {
    vi.unstubAllEnvs();
    dir?.remove();
  });

  it('logs where it listens, its token source and pools; serves the API; stops on SIGTERM', async () => {
    // An empty pool: only the golden snapshot (usually already made by other tests) is needed.
    const config = writeConfig(dir!.path, `data_dir = "${testDataDir()}"\n[pools.default]\nmin = 0\ntarget = 0\nmax = 1\n`);
    vi.stubEnv('TFC_TOKEN', 'serve-test-token-0123456789');
    vi.stubEnv('TFC_DATA_DIR', '');
    const before = new Set(process.rawListeners('SIGTERM'));
    // serve installs process-wide handlers meant for a process of its own; remove them afterwards.
    const events = ['SIGINT', 'unhandledRejection'] as const;
    const others = new Map(events.map((e) => [e, new Set(process.rawListeners(e))]));
    const serve = startCli(['--config', config, 'serve', '--listen', '127.0.0.1:0']);
    let stopped = false;
    const stop = () => {
      // What a SIGTERM does, without signalling the test worker itself.
      for (const l of process.rawListeners('SIGTERM')) if (!before.has(l)) (l as (s: string) => void)('SIGTERM');
      stopped = true;
    };
    try {
      const end = Date.now() + 300_000;
      let url: string | undefined;
      while (!url) {
        const settled = await Promise.race([serve.done.then((r) => r), new Promise<null>((r) => setTimeout(() => r(null), 100))]);
        if (settled) throw new Error(`tfc serve exited ${settled.code}: ${settled.stderr}`);
        url = /listening on (http:\/\/\S+)/.exec(serve.output().stderr)?.[1];
        if (Date.now() > end) throw new Error(`tfc serve did not start: ${serve.output().stderr}`);
      }
      const log = serve.output().stderr;
      expect(log).toContain('tfc serve: API token: from TFC_TOKEN');
      expect(log).toMatch(/tfc serve: pool default: profile minimal, target 0 \(min 0, max 1\)/);
      const res = await fetch(`${url}/v1/pools`, { headers: { authorization: 'Bearer serve-test-token-0123456789' } });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { pools: Array<{ name: string }> }).pools.map((p) => p.name)).toEqual(['default']);
      stop();
      const r = await serve.done;
      expect(r.code).toBe(0);
      expect(r.stderr).toContain('tfc serve: SIGTERM: stopping, destroying VMs');
      expect(r.stderr).toMatch(/tfc serve: stopped\n$/);
      await expect(fetch(`${url}/v1/health`)).rejects.toThrow();
    } finally {
      if (!stopped) stop();
      await serve.done.catch(() => undefined);
      for (const e of events) for (const l of process.rawListeners(e)) if (!others.get(e)!.has(l)) process.removeListener(e, l as () => void);
    }
  }, 360_000);
});
