/**
 * The cost of the privilege model (docs/security.md), measured side by side
 * in one run: cold boots and clone restores alternate between a runtime with
 * `security.drop_privileges = true` (QEMU under -sandbox and -runas, a uid
 * per VM) and one with it off (QEMU as root, no seccomp), same profile, same
 * golden snapshot. The `privilege` suite of `tfc bench`; reports, does not judge.
 */
import { resolveProfile, type Config } from '../config/index.js';
import { composeRuntime } from '../runtime/index.js';
import { sum, type BenchLog } from './common.js';

export interface PrivilegeMode {
  name: string;
  dropPrivileges: boolean;
  /** Cold boot to agent ready and clone restore to agent ready, ms, per run. */
  coldMs: number[];
  restoreMs: number[];
}

function withPrivileges(config: Config, dropPrivileges: boolean): Config {
  return { ...config, security: { ...config.security, dropPrivileges } };
}

/** Why the comparison cannot run here, or null when it can (both modes start QEMU as root first). */
export function privilegeUnsupported(uid: number | undefined = process.getuid?.()): string | null {
  return uid === 0 ? null : 'needs root: the privileged mode runs QEMU as root and the dropped mode switches to a uid per VM';
}

/** `runs` interleaved cold boots and restores in each mode. Throws when a guest command fails or a runtime cannot start. */
export async function privilegeCost(config: Config, runs: number, log: BenchLog = () => undefined): Promise<PrivilegeMode[]> {
  const modes: Array<PrivilegeMode & { runtime: Awaited<ReturnType<typeof composeRuntime>> }> = [];
  try {
    for (const [name, dropPrivileges] of [
      ['dropped (sandbox + uid per VM)', true],
      ['privileged (root, no sandbox)', false],
    ] as const) {
      modes.push({ name, dropPrivileges, coldMs: [], restoreMs: [], runtime: await composeRuntime(withPrivileges(config, dropPrivileges)) });
    }
    const profile = resolveProfile(config);
    await modes[0].runtime.snapshots.ensure(profile);
    for (let run = 0; run < runs; run++) {
      for (const mode of modes) {
        const cold = await mode.runtime.service.create({ profile });
        if ((await cold.exec({ argv: ['true'] })).exitCode !== 0) throw new Error(`${mode.name}: guest command failed`);
        mode.coldMs.push(sum(cold.bootPhases.map((p) => p.ms)));
        await mode.runtime.service.destroy(cold);
        const clone = await mode.runtime.snapshots.clone(profile);
        if ((await clone.exec({ argv: ['true'] })).exitCode !== 0) throw new Error(`${mode.name}: clone command failed`);
        mode.restoreMs.push(sum(clone.bootPhases.map((p) => p.ms)));
        await mode.runtime.service.destroy(clone);
        log(`run ${run + 1}/${runs} ${mode.name}: cold ${mode.coldMs.at(-1)!.toFixed(0)} ms, restore ${mode.restoreMs.at(-1)!.toFixed(1)} ms`);
      }
    }
  } finally {
    for (const m of modes) await m.runtime.close('benchmark finished');
  }
  return modes.map(({ name, dropPrivileges, coldMs, restoreMs }) => ({ name, dropPrivileges, coldMs, restoreMs }));
}
