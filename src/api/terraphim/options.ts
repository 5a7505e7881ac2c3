/**
 * Options of the Terraphim layer (`ApiDeps.terraphim`) and how the daemon
 * makes them from the `[terraphim]` config table and its database.
 */
import type { TerraphimConfig } from '../../config/index.js';
import { TerraphimHistoryRepository, type Db } from '../../store/index.js';
import { DEFAULT_HISTORY_BOUNDS } from './history.js';
import type { TerraphimSnapshots } from './snapshots.js';

/** Options of the Terraphim layer; every one has a default. */
export interface TerraphimOptions {
  /** vm_type aliases -> pool or profile name (config `[terraphim.vm_types]`), e.g. {"focal-optimized": "default"}. Default: none. */
  vmTypes?: Record<string, string>;
  /** vm_type for agents' VMs (config `terraphim.default_vm_type`); default: a pool of the language's profile, else the pool named "default", else the first pool by name. */
  defaultVmType?: string;
  /** Guest directory for program files; default /tmp/tfc-terraphim (tests on the fake driver pass a host temp dir). */
  dir?: string;
  /** Live snapshots for the bridge's snapshot and rollback calls; default: over `deps.liveSnapshots`; with neither they answer 501 NOT_IMPLEMENTED. */
  snapshots?: TerraphimSnapshots;
  /**
   * Where the command history lives, with its bounds (config
   * `terraphim.history_max_entries`, `history_max_vms`); default: a private
   * in-memory database with the TERRAPHIM_LIMITS bounds, lost when the app closes.
   */
  history?: TerraphimHistoryRepository;
}

/**
 * The daemon's options: aliases and default vm_type from `config` (already
 * validated: every alias reaches a pool), history in `db` (the state
 * database, so it survives restarts) with the configured bounds. Throws
 * STORE_ERROR when the history table cannot be trimmed to those bounds.
 */
export function terraphimOptionsFromConfig(config: TerraphimConfig, db: Db): TerraphimOptions {
  return {
    vmTypes: { ...config.vmTypes },
    ...(config.defaultVmType === null ? {} : { defaultVmType: config.defaultVmType }),
    history: new TerraphimHistoryRepository(db, {
      ...DEFAULT_HISTORY_BOUNDS,
      maxEntriesPerVm: config.historyMaxEntries,
      maxVms: config.historyMaxVms,
    }),
  };
}
