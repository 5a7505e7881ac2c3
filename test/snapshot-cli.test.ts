import { afterAll, describe, expect, it } from 'vitest';
import { assertNothingLeft, runTfc, scratchDir, testDataDir, writeConfig } from './helpers.js';

// Golden snapshots through the real CLI: one cold boot, then clones.
describe('tfc snapshot and instant VMs', () => {
  const dir = scratchDir();
  const config = writeConfig(dir.path, 'default_profile = "quick"\n[profiles.quick]\nboot_level = "instant"\nmemory_mib = 192\n');
  const tfc = (args: string[]) => runTfc(['--config', config, ...args]);

  afterAll(async () => {
    await tfc(['snapshot', 'rm', 'quick']);
    dir.remove();
    await assertNothingLeft(testDataDir());
  });

  it('creates a golden snapshot once, then finds it', async () => {
    const first = JSON.parse((await tfc(['snapshot', 'create', '--json'])).stdout);
    expect(first).toMatchObject({ profile: 'quick', driver: 'qemu', memory_mib: 192 });
    expect(first.create_phases.map((p: { name: string }) => p.name)).toEqual([
      'prepare',
      'spawn_vmm',
      'configure',
      'start',
      'kernel',
      'agent_ready',
      'pause',
      'snapshot',
    ]);
    // Device state only: RAM stays in the memory file.
    expect(first.files.state.size_bytes).toBeLessThan(2 * 1024 * 1024);
    const again = JSON.parse((await tfc(['snapshot', 'create', '--json'])).stdout);
    expect(again.key).toBe(first.key);
    expect(again.created_at).toBe(first.created_at);
    const ls = JSON.parse((await tfc(['snapshot', 'ls', '--json'])).stdout);
    expect(ls.find((s: { key: string }) => s.key === first.key)).toMatchObject({ stale: false });
  });

  it('serves an instant profile from clones: restore phases, no kernel boot', async () => {
    const r = await tfc(['vm', 'run', '--json', '--', 'date', '+%s']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.created_by).toBe('restore');
    const names = out.timings.phases.map((p: { name: string }) => p.name);
    expect(names).toEqual(['golden_snapshot', 'prepare', 'spawn_vmm', 'load_snapshot', 'resume', 'agent_ready', 'refresh_guest', 'exec', 'stop']);
    // A sanity check only: the driver contract suite proves clones get a fresh clock (it sets the template's clock back first).
    expect(Math.abs(Number(out.stdout) - Date.now() / 1000)).toBeLessThan(60);
    const sum = out.timings.phases.reduce((a: number, p: { ms: number }) => a + p.ms, 0);
    expect(Math.abs(sum - out.timings.total_ms) / out.timings.total_ms).toBeLessThan(0.05);
  });

  it('clones do not share state', async () => {
    const [a, b] = await Promise.all([
      tfc(['vm', 'run', '--json', '--', 'sh', '-c', 'echo a > /root/f; cat /root/f; head -c 16 /dev/urandom | od -An -tx1']),
      tfc(['vm', 'run', '--json', '--', 'sh', '-c', 'cat /root/f 2>&1; head -c 16 /dev/urandom | od -An -tx1']),
    ]);
    const [ja, jb] = [JSON.parse(a.stdout), JSON.parse(b.stdout)];
    expect(ja.stdout.split('\n')[0]).toBe('a');
    expect(jb.stdout).toMatch(/No such file/);
    expect(ja.stdout.split('\n')[1]).not.toBe(jb.stdout.split('\n')[1]);
  });

  it('rm removes it; rm of nothing is a clear error', async () => {
    const removed = JSON.parse((await tfc(['snapshot', 'rm', 'quick', '--json'])).stdout);
    expect(removed.length).toBeGreaterThan(0);
    const r = await tfc(['snapshot', 'rm', 'quick']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SNAPSHOT_NOT_FOUND.*tfc snapshot ls/);
  });
});
