import { afterEach, describe, expect, it } from 'vitest';
import { assertNothingLeft, runTfc, scratchDir, testDataDir, writeConfig } from './helpers.js';

// The user's path: the real `tfc` binary booting real VMs under QEMU.
describe('tfc vm run (real VMs)', () => {
  afterEach(async () => {
    await assertNothingLeft(testDataDir());
  });

  it('prints the guest kernel release and exits 0', async () => {
    const r = await runTfc(['vm', 'run', '--', 'uname', '-r']);
    expect(r.stderr).toMatch(/agent_ready/);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/-cloud-amd64$/);
    expect(r.stderr).toMatch(/kernel/);
  });

  it('propagates the exit code', async () => {
    const r = await runTfc(['vm', 'run', '--', 'sh', '-c', 'echo to-stderr >&2; exit 7']);
    expect(r.code).toBe(7);
    expect(r.stderr).toContain('to-stderr');
  });

  it('--json prints one object whose phases add up to total_ms', async () => {
    const r = await runTfc(['vm', 'run', '--json', '--memory-mib', '192', '--', 'sh', '-c', 'echo hi; cat /proc/meminfo | head -1']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ driver: 'qemu', exit_code: 0, stderr: '' });
    expect(out.vm_id).toMatch(/^vm-[0-9a-f]{12}$/);
    expect(['tcg', 'kvm']).toContain(out.accel);
    expect(out.stdout).toMatch(/^hi\nMemTotal:/);
    const names = out.timings.phases.map((p: { name: string }) => p.name);
    expect(names).toEqual(['prepare', 'spawn_vmm', 'configure', 'start', 'kernel', 'agent_ready', 'exec', 'stop']);
    const sum = out.timings.phases.reduce((a: number, p: { ms: number }) => a + p.ms, 0);
    expect(Math.abs(sum - out.timings.total_ms) / out.timings.total_ms).toBeLessThan(0.05);
  });

  it('kills a command that exceeds --timeout-ms and says so', async () => {
    const started = Date.now();
    const r = await runTfc(['vm', 'run', '--timeout-ms', '1500', '--', 'sleep', '60']);
    expect(r.code).toBe(124);
    expect(r.stderr).toMatch(/timed out after 1500 ms/);
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it('reports a command missing in the guest with exit 127', async () => {
    const r = await runTfc(['vm', 'run', '--', 'definitely-not-a-command']);
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/command not found in guest: definitely-not-a-command/);
  });

  it('runs two VMs concurrently', async () => {
    const [a, b] = await Promise.all([runTfc(['vm', 'run', '--json', '--', 'echo', 'a']), runTfc(['vm', 'run', '--json', '--', 'echo', 'b'])]);
    const [ja, jb] = [JSON.parse(a.stdout), JSON.parse(b.stdout)];
    expect([ja.stdout, jb.stdout]).toEqual(['a\n', 'b\n']);
    expect(ja.vm_id).not.toBe(jb.vm_id);
  });
});

describe('tfc vm run: bad input', () => {
  it('unknown profile: clear error, exit 1, no VM started', async () => {
    const r = await runTfc(['vm', 'run', '--profile', 'nope', '--', 'true']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/PROFILE_NOT_FOUND.*nope.*minimal/s);
    await assertNothingLeft(testDataDir());
  });

  it('missing image: says how to build it', async () => {
    const empty = scratchDir();
    try {
      const r = await runTfc(['vm', 'run', '--', 'true'], { dataDir: empty.path });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/IMAGE_NOT_FOUND.*tfc image build/s);
    } finally {
      empty.remove();
    }
  });

  it('bad config: names the key, value and line', async () => {
    const dir = scratchDir();
    try {
      const config = writeConfig(dir.path, '[profiles.minimal]\nvcpus = 0\n');
      const r = await runTfc(['--config', config, 'vm', 'run', '--', 'true']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/CONFIG_INVALID/);
      expect(r.stderr).toMatch(/line 2.*profiles\.minimal\.vcpus/);
    } finally {
      dir.remove();
    }
  });

  it('bad flag value: usage error with exit 2', async () => {
    const r = await runTfc(['vm', 'run', '--vcpus', 'many', '--', 'true']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--vcpus must be a positive integer/);
  });
});
