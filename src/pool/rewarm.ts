import { TfcError } from '../errors/index.js';

/**
 * What a pool runs in a new VM of a profile without `warmup` before it
 * offers it (pools.X.rewarm, docs/pools.md#rewarm): one tiny command. Under
 * QEMU TCG a clone is a new VMM process with an empty translation cache, so
 * the first command run in it translates the guest's exec path afresh (the
 * agent's fork and exec, the kernel's, the program's start): measured on the
 * `minimal` profile, `true` took 100-150 ms and as much CPU the first time,
 * 10-15 ms the second. Run at refill time it costs the same CPU, but off the
 * request path: the caller's first command starts warm. Only while the pool
 * is ahead of demand (aheadOfDemand).
 */
export const DEFAULT_REWARM_ARGV: readonly string[] = ['true'];

/** How long the default warm-up command may take at most (a broken VM is not offered; its refill is retried). */
export const DEFAULT_REWARM_TIMEOUT_MS = 10_000;

export interface RewarmPlan {
  argv: string[];
  timeoutMs: number;
  /**
   * The profile's own warmup: a non-zero exit means the VM is not offered.
   * The default command only warms caches: its exit status, and an image
   * without the program, do not matter (the VM answered either way).
   */
  strict: boolean;
}

/**
 * The warm-up a pool runs in each new member: the profile's `warmup` when
 * it has one, else DEFAULT_REWARM_ARGV; none when rewarm is off. Pure.
 */
export function rewarmPlan(profile: { warmup?: readonly string[]; bootTimeoutMs: number }, rewarm: boolean): RewarmPlan | null {
  if (!rewarm) return null;
  const own = profile.warmup ?? [];
  if (own.length > 0) return { argv: [...own], timeoutMs: profile.bootTimeoutMs, strict: true };
  return { argv: [...DEFAULT_REWARM_ARGV], timeoutMs: Math.min(profile.bootTimeoutMs, DEFAULT_REWARM_TIMEOUT_MS), strict: false };
}

/**
 * Refill utilisation (allocations expected per refill lead time, per refill
 * slot) below which the pool runs the default warm-up command.
 */
export const DEFAULT_REWARM_BELOW_UTILISATION = 0.5;

/**
 * Whether the pool is ahead of demand, so the default warm-up may run: no
 * allocation is waiting and λR (allocations per smoothed lead time) is
 * below DEFAULT_REWARM_BELOW_UTILISATION x `concurrency`. The warm-up holds
 * a refill slot about as long as the restore itself (TCG), so behind demand
 * it would halve the rate at which VMs are offered, and allocations would
 * wait for VMs instead of their first command for its translation (measured
 * in docs/pools.md#rewarm). A profile's own warmup always runs. Pure.
 */
export function aheadOfDemand(waiting: number, perRefill: number, concurrency: number): boolean {
  return waiting === 0 && perRefill < DEFAULT_REWARM_BELOW_UTILISATION * Math.max(1, concurrency);
}

/**
 * Runs `plan` through `exec` (a VM's). Throws when the VM is not fit to be
 * offered: the agent failed or timed out, or a strict warmup exited non-zero
 * (with its stderr's tail). A lenient one whose program is missing
 * (GUEST_COMMAND_NOT_FOUND) or exits non-zero is fine.
 */
export async function runRewarm(
  plan: RewarmPlan,
  exec: (request: { argv: string[]; timeoutMs: number }) => Promise<{ exitCode: number | null; signal?: string | null; stderr: Buffer }>,
): Promise<void> {
  let r;
  try {
    r = await exec({ argv: plan.argv, timeoutMs: plan.timeoutMs });
  } catch (err) {
    if (!plan.strict && err instanceof TfcError && err.code === 'GUEST_COMMAND_NOT_FOUND') return;
    throw err;
  }
  if (plan.strict && r.exitCode !== 0) {
    throw new Error(`warmup ${JSON.stringify(plan.argv)} exited with ${r.exitCode ?? r.signal}: ${r.stderr.toString('utf8').slice(-500)}`);
  }
}
