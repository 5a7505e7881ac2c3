import type { Config } from '../config/index.js';
import type { ReconcileReport as NetworkReconcileReport, NetworkManager } from '../net/index.js';
import type { SnapshotManager } from '../snapshot/index.js';
import type { LiveSnapshotService } from '../snapshot/live/index.js';
import type { DataLayout, Db, VmRepository } from '../store/index.js';
import type { VmService, VmServiceOptions } from '../vm/index.js';
import type { DriverName, VmmDriver } from '../vmm/index.js';
import type { ReconcileReport } from './reconcile.js';

export interface ComposeOptions {
  /**
   * Whether VMs of this runtime may get networks. Default true: when some
   * profile enables networking, the host side is set up (needs root) and
   * networks of dead processes are swept. `false` for uses that create no
   * VM (listing and removing snapshots), so they touch nothing on the host.
   */
  networking?: boolean;
  /** Reconcile the store with this machine before anything else (daemon start; see reconcileAtStart). Default false. */
  reconcile?: boolean;
  /** Told about every VM that became ready and every creation that failed (the daemon's metrics). */
  observer?: VmServiceOptions['observer'];
  /** Keep VMM processes started and waiting for restores (src/vm/standby.ts; the daemon). Default off. */
  standbyVmms?: VmServiceOptions['standbyVmms'];
  /**
   * Drivers to start probing as soon as they exist, before the rest of the
   * runtime is loaded: a probe runs the VMM binary (`--version`, 30-120 ms
   * on a busy 2-core machine) and that overlaps the loading instead of
   * delaying the first VM (`tfc vm run`). Default none. A failed early
   * probe is not reported here: the driver probes again on use and throws then.
   */
  probe?: readonly DriverName[];
}

const LIVE_VM_STATES = ['creating', 'booting', 'running', 'paused', 'stopping'] as const;

/** Everything a tfc process needs to make VMs, wired once from the config. */
export interface Runtime {
  readonly config: Config;
  readonly layout: DataLayout;
  readonly db: Db;
  readonly repo: VmRepository;
  readonly drivers: Partial<Record<DriverName, VmmDriver>>;
  readonly service: VmService;
  readonly snapshots: SnapshotManager;
  /** Snapshots of running VMs (rollback, fork); unnamed ones of VMs that are gone are removed at start. */
  readonly liveSnapshots: LiveSnapshotService;
  /** Present when networking was asked for and some profile enables it. */
  readonly networks?: NetworkManager;
  /** With `reconcile: true`: what start-up reconciliation found. */
  readonly reconciled?: ReconcileReport;
  /** With networking: the leftover networks of dead processes that were removed. */
  readonly networksReconciled?: NetworkReconcileReport;
  /**
   * Stops every VM of this process (`reason` goes into their state
   * history), removes the host-side network table once no VM network is
   * left (another process's networks keep it), and closes the database.
   * May be called more than once; later calls wait for the first.
   */
  close(reason: string): Promise<void>;
}

/**
 * The composition root: config -> store (optionally reconciled) -> drivers
 * -> networking -> VM service -> golden snapshots. The daemon, the CLI and
 * the benchmarks all build their VMs through this one function, so they
 * agree on every option (e.g. the driver-neutral `vmm.stop_timeout_ms`).
 * Throws what opening the store or preparing networking throws
 * (STORE_ERROR, NETWORK_UNAVAILABLE); then nothing is left open.
 */
export async function composeRuntime(config: Config, options: ComposeOptions = {}): Promise<Runtime> {
  // Modules are loaded here, not at import, so a process that never makes a
  // runtime (help, API clients) does not pay for them, and the drivers come
  // first: their probes run while the rest loads.
  const { createDrivers } = await import('../vmm/index.js');
  const drivers = createDrivers(config);
  for (const name of options.probe ?? []) void drivers[name]?.probe().catch(() => undefined);
  const [store, { VmService }, { SnapshotManager }, { LiveSnapshotService }] = await Promise.all([
    import('../store/index.js'),
    import('../vm/index.js'),
    import('../snapshot/index.js'),
    import('../snapshot/live/index.js'),
  ]);
  const layout = store.dataLayout(config.dataDir);
  const db = store.openDatabase(layout.database);
  try {
    const repo = new store.VmRepository(db);
    const reconciled = options.reconcile ? (await import('./reconcile.js')).reconcileAtStart(layout, repo, drivers) : undefined;
    const networking = options.networking === false ? undefined : await (await import('./networking.js')).prepareNetworking(config, db, repo);
    const service = new VmService({
      layout,
      repo,
      drivers,
      stopTimeoutMs: config.vmm.stopTimeoutMs,
      consoleLogMaxBytes: config.vmm.consoleLogMaxBytes,
      ...(networking ? { networks: networking.manager } : {}),
      ...(options.observer ? { observer: options.observer } : {}),
      ...(options.standbyVmms ? { standbyVmms: options.standbyVmms } : {}),
    });
    const snapshots = new SnapshotManager(layout, service);
    const liveSnapshots = new LiveSnapshotService({ layout, repo: new store.LiveSnapshotRepository(db), service, profiles: (name) => config.profiles[name] });
    // Unnamed snapshots of VMs that died with an earlier process go (VMs of other live processes keep theirs).
    if (options.reconcile) liveSnapshots.removeOrphans(new Set(repo.list({ states: [...LIVE_VM_STATES] }).map((v) => v.id)));
    let closing: Promise<void> | undefined;
    const close = (reason: string) =>
      (closing ??= (async () => {
        try {
          await service.stopAll(reason);
          // Refused (and kept) while any VM network, of any process, still exists.
          await networking?.manager.removeHost().catch(() => undefined);
        } finally {
          db.close();
        }
      })());
    return {
      config,
      layout,
      db,
      repo,
      drivers,
      service,
      snapshots,
      liveSnapshots,
      ...(networking ? { networks: networking.manager, networksReconciled: networking.reconciled } : {}),
      ...(reconciled ? { reconciled } : {}),
      close,
    };
  } catch (err) {
    db.close();
    throw err;
  }
}
