import { PoolNotFoundError, VmBusyError } from '../errors/index.js';
import { resolveProfile, type Config, type Profile } from '../config/index.js';
import type { PoolManager } from '../pool/index.js';
import type { SnapshotManager } from '../snapshot/index.js';
import type { VmService } from '../vm/index.js';
import type { LeasedVm, RunVmSource } from './code-runner.js';

export interface RuntimeVmSourceOptions {
  config: Config;
  snapshots: Pick<SnapshotManager, 'clone'>;
  service: Pick<VmService, 'destroy'>;
  /** The daemon's pools; the CLI runs without (always a clone). */
  pools?: Pick<PoolManager, 'get' | 'list'>;
  /**
   * Most clones made for runs that exist at once (each is a VMM process and
   * its guest memory): one more is VM_BUSY (429), so clients cannot make the
   * host start VMs without bound. Default DEFAULT_MAX_RUN_CLONES.
   */
  maxClones?: number;
}

/** Default bound of concurrent run clones (a pool serves more: configure one for busy languages). */
export const DEFAULT_MAX_RUN_CLONES = 4;

/**
 * VMs for the code runner from a composed runtime: pools when the daemon
 * has one for the profile (or the request names one), else a clone of the
 * profile's golden snapshot that is destroyed afterwards.
 */
export function runtimeVmSource(options: RuntimeVmSourceOptions): RunVmSource {
  const { config, snapshots, service, pools } = options;
  const maxClones = options.maxClones ?? DEFAULT_MAX_RUN_CLONES;
  let clones = 0;
  return {
    profile: (name?: string): Profile => resolveProfile(config, name),
    pool(name, profile) {
      if (name !== undefined) {
        if (!pools) {
          throw new PoolNotFoundError(
            `pool "${name}" is not available: pools exist only in the daemon (\`tfc serve\`, with TFC_URL set for \`tfc run\`); leave the pool out to run in a fresh clone`,
            { details: { name } },
          );
        }
        return { name: pools.get(name).name };
      }
      const match = pools?.list().find((p) => p.profile === profile);
      return match ? { name: match.name } : null;
    },
    async allocate(name): Promise<LeasedVm> {
      const pool = pools!.get(name);
      const { member } = await pool.allocate({});
      let given = false;
      return {
        vm: member.vm,
        source: 'pool',
        pool: name,
        giveBack: async () => {
          if (given) return;
          given = true;
          await pool.release(member.vm.id);
        },
      };
    },
    async clone(profile): Promise<LeasedVm> {
      if (clones >= maxClones) {
        throw new VmBusyError(
          `${clones} runs are already using fresh clones, the most at once; retry shortly, or configure a pool for profile ${profile.name} ([pools.NAME] profile = "${profile.name}") so runs are served from it`,
          { details: { running: clones, max: maxClones, profile: profile.name } },
        );
      }
      clones++;
      let vm;
      try {
        vm = await snapshots.clone(profile);
      } catch (err) {
        clones--;
        throw err;
      }
      let given = false;
      return {
        vm,
        source: 'clone',
        pool: null,
        giveBack: async () => {
          if (given) return;
          given = true;
          try {
            await service.destroy(vm, 'run finished');
          } finally {
            clones--;
          }
        },
      };
    },
  };
}
