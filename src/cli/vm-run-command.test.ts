import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { defaultConfig, type Config } from '../config/index.js';
import { SnapshotManager } from '../snapshot/index.js';
import { canRunFakeVms, compileFakeGuest, openFakeRuntime, type FakeRuntime } from '../testing/fake-runtime.js';
import { runInFreshVm } from './commands/vm-run.js';

// `tfc vm run` answers before the teardown and returns only after it. The
// VMM is the fake driver (the real agent on a Unix socket, no QEMU).

if (!canRunFakeVms) console.warn('vm run ordering tests skipped: gcc is not installed');

describe.skipIf(!canRunFakeVms)('tfc vm run: answer, then teardown', () => {
  let guest: Awaited<ReturnType<typeof compileFakeGuest>>;
  let rt: FakeRuntime;
  let events: string[];

  beforeAll(async () => {
    guest = await compileFakeGuest();
  }, 120_000);
  afterAll(() => guest?.remove());

  beforeEach(() => {
    rt = openFakeRuntime(guest.agentBinary);
    events = [];
    const destroy = rt.service.destroy.bind(rt.service);
    vi.spyOn(rt.service, 'destroy').mockImplementation(async (vm, reason) => {
      events.push('destroy started');
      await destroy(vm, reason);
      events.push(`destroyed, VMs left: ${rt.service.list().length}`);
    });
    for (const [name, stream] of [
      ['stdout', process.stdout],
      ['stderr', process.stderr],
    ] as const) {
      vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
        const text = Buffer.from(chunk).toString('utf8');
        if (text.length > 0) events.push(`${name}: ${text}`);
        return true;
      });
    }
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await rt.close();
  });

  function context(bootLevel: 'standard' | 'instant') {
    const defaults = defaultConfig({ env: {} });
    const config: Config = {
      ...defaults,
      profiles: { ...defaults.profiles, minimal: { ...defaults.profiles.minimal, bootTimeoutMs: rt.profile.bootTimeoutMs, bootLevel } },
    };
    const snapshots = new SnapshotManager(rt.layout, rt.service);
    return { config, vmService: async () => rt.service, snapshots: async () => snapshots };
  }

  for (const bootLevel of ['standard', 'instant'] as const) {
    it(`${bootLevel}: the output and the exit line come before the teardown, the phase table after it`, async () => {
      const code = await runInFreshVm(context(bootLevel), ['sh', '-c', 'echo out; echo err >&2; exit 3'], { timeoutMs: 10_000 });
      expect(code).toBe(3);
      // The last one: at the instant level the golden snapshot's template is destroyed first.
      const teardown = events.lastIndexOf('destroy started');
      expect(teardown).toBeGreaterThan(0);
      const before = events.slice(0, teardown).join('');
      expect(before).toContain('stdout: out\n');
      expect(before).toContain('stderr: err\n');
      expect(before).toMatch(/vm vm-[0-9a-f]{12} \(qemu, tcg, .*\) exit 3/);
      expect(before).not.toContain('phase');
      const after = events.slice(teardown).join('');
      expect(after).toMatch(/destroyed, VMs left: 0[\s\S]*phase[\s\S]*stop[\s\S]*answered .* ms after process start/);
    });
  }

  it('--json: one object after the teardown, with the stop phase and startup_ms', async () => {
    const code = await runInFreshVm(context('instant'), ['echo', 'hi'], { timeoutMs: 10_000, json: true });
    expect(code).toBe(0);
    const teardown = events.map((e) => e.startsWith('destroyed')).lastIndexOf(true);
    const out = events.filter((e) => e.startsWith('stdout: '));
    expect(out).toHaveLength(1);
    expect(events.indexOf(out[0])).toBeGreaterThan(teardown);
    const json = JSON.parse(out[0].slice('stdout: '.length));
    expect(json).toMatchObject({ exit_code: 0, stdout: 'hi\n', created_by: 'restore' });
    expect(json.timings.startup_ms).toBeGreaterThan(0);
    expect(json.timings.phases.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['golden_snapshot', 'exec', 'stop']));
  });
});
