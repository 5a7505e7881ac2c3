import type { Config } from '../config/index.js';
import { resolveProfile } from '../config/index.js';
import { PoolNotFoundError } from '../errors/index.js';
import type { SnapshotManager } from '../snapshot/index.js';
import type { VmService } from '../vm/index.js';
import { Pool, type PoolActivity, type PoolEvent, type PoolStatus } from './pool.js';

/**
 * All pools of the config. `start()` makes sure each pool's profile has a
 * golden snapshot (one cold boot per profile, ahead of any request), then
 * starts prewarming. VMs are clones of that snapshot.
 */
export class PoolManager {
  private readonly pools = new Map<string, Pool>();

  constructor(
    config: Config,
    private readonly snapshots: SnapshotManager,
    private readonly service: VmService,
    onEvent?: (event: PoolEvent) => void,
    /** `activity`: told about allocations, releases and count changes of every pool (the daemon's event stream). */
    options: { activity?: PoolActivity } = {},
  ) {
    for (const poolConfig of Object.values(config.pools)) {
      const profile = resolveProfile(config, poolConfig.profile);
      this.pools.set(
        poolConfig.name,
        new Pool(
          poolConfig,
          profile,
          {
            create: (p) => this.snapshots.clone(p),
            destroy: (vm, reason) => this.service.destroy(vm, reason),
          },
          undefined,
          onEvent,
          options.activity,
        ),
      );
    }
  }

  /** Creates missing golden snapshots (one profile at a time: boots are CPU-heavy), then starts every pool. */
  async start(onProgress?: (message: string) => void): Promise<void> {
    const profiles = new Map([...this.pools.values()].map((p) => [p.profile.name, p.profile]));
    for (const profile of profiles.values()) {
      const started = performance.now();
      const snap = await this.snapshots.ensure(profile);
      onProgress?.(`golden snapshot for profile ${profile.name}: ${snap.manifest.key.slice(0, 16)} (${Math.round(performance.now() - started)} ms)`);
    }
    for (const pool of this.pools.values()) pool.start();
  }

  /** Throws PoolNotFoundError listing the pools. */
  get(name: string): Pool {
    const pool = this.pools.get(name);
    if (!pool) throw new PoolNotFoundError(`no pool named "${name}"; pools: ${[...this.pools.keys()].join(', ')}`, { details: { name } });
    return pool;
  }

  list(): PoolStatus[] {
    return [...this.pools.values()].map((p) => p.status());
  }

  /** The pool that owns VM `vmId`, if any. */
  poolOf(vmId: string): Pool | undefined {
    return [...this.pools.values()].find((p) => p.member(vmId) !== undefined);
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.pools.values()].map((p) => p.stop('daemon shutting down')));
  }
}
