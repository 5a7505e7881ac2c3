import { describe, expect, it } from 'vitest';
import { AgentError, GuestCommandNotFoundError } from '../errors/index.js';
import { aheadOfDemand, DEFAULT_REWARM_ARGV, DEFAULT_REWARM_BELOW_UTILISATION, DEFAULT_REWARM_TIMEOUT_MS, rewarmPlan, runRewarm } from './rewarm.js';

const result = (exitCode: number | null) => ({ exitCode, signal: null, stderr: Buffer.from('it said no') });

describe('rewarmPlan', () => {
  it("runs the profile's warmup, strictly, with the boot timeout", () => {
    expect(rewarmPlan({ warmup: ['python3', '-c', 'import json'], bootTimeoutMs: 30_000 }, true)).toEqual({
      argv: ['python3', '-c', 'import json'],
      timeoutMs: 30_000,
      strict: true,
    });
  });

  it('runs the default command, leniently, for a profile without warmup (absent or empty)', () => {
    for (const warmup of [undefined, []]) {
      expect(rewarmPlan({ warmup, bootTimeoutMs: 30_000 }, true)).toEqual({
        argv: [...DEFAULT_REWARM_ARGV],
        timeoutMs: DEFAULT_REWARM_TIMEOUT_MS,
        strict: false,
      });
    }
    expect(rewarmPlan({ bootTimeoutMs: 2000 }, true)?.timeoutMs).toBe(2000);
  });

  it('runs nothing when rewarm is off', () => {
    expect(rewarmPlan({ warmup: ['python3'], bootTimeoutMs: 30_000 }, false)).toBeNull();
    expect(rewarmPlan({ bootTimeoutMs: 30_000 }, false)).toBeNull();
  });
});

describe('runRewarm', () => {
  const strict = { argv: ['python3'], timeoutMs: 1000, strict: true };
  const lenient = { argv: ['true'], timeoutMs: 1000, strict: false };

  it('passes the argv and timeout to exec', async () => {
    const seen: unknown[] = [];
    await runRewarm(lenient, async (r) => (seen.push(r), result(0)));
    expect(seen).toEqual([{ argv: ['true'], timeoutMs: 1000 }]);
  });

  it('fails a strict warmup that exits non-zero, with its stderr', async () => {
    await expect(runRewarm(strict, async () => result(2))).rejects.toThrow('warmup ["python3"] exited with 2: it said no');
    await expect(runRewarm(strict, async () => result(0))).resolves.toBeUndefined();
  });

  it('accepts a lenient one that exits non-zero or whose program is missing', async () => {
    await expect(runRewarm(lenient, async () => result(1))).resolves.toBeUndefined();
    await expect(
      runRewarm(lenient, async () => {
        throw new GuestCommandNotFoundError('no true here');
      }),
    ).resolves.toBeUndefined();
  });

  it('fails either kind when the agent fails (the VM is not fit to be offered)', async () => {
    const broken = async () => {
      throw new AgentError('agent gone');
    };
    await expect(runRewarm(lenient, broken)).rejects.toThrow('agent gone');
    await expect(runRewarm(strict, broken)).rejects.toThrow('agent gone');
    await expect(
      runRewarm(strict, async () => {
        throw new GuestCommandNotFoundError('no python3');
      }),
    ).rejects.toThrow('no python3');
  });
});

describe('aheadOfDemand', () => {
  it('is true with nobody waiting and the refill slots under half busy', () => {
    expect(aheadOfDemand(0, 0, 1)).toBe(true);
    expect(aheadOfDemand(0, 0.49, 1)).toBe(true);
    expect(aheadOfDemand(0, 0.9, 2)).toBe(true);
  });

  it('is false with an allocation waiting or demand at half the refill capacity or more', () => {
    expect(aheadOfDemand(1, 0, 1)).toBe(false);
    expect(aheadOfDemand(0, DEFAULT_REWARM_BELOW_UTILISATION, 1)).toBe(false);
    expect(aheadOfDemand(0, 1.2, 2)).toBe(false);
    // A concurrency below 1 counts as 1.
    expect(aheadOfDemand(0, 0.6, 0)).toBe(false);
  });
});
