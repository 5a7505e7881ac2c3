import { loadConfig, type LoadedConfig } from '../config/index.js';
import { dataLayout, openDatabase, VmRepository, type DataLayout, type Db } from '../store/index.js';
import { createDrivers } from '../vmm/index.js';
import { VmService } from '../vm/index.js';
import { SnapshotManager } from '../snapshot/index.js';
import { prepareNetworking } from '../daemon/networking.js';
import type { NetworkManager } from '../net/index.js';

/** Global CLI options shared by every command. */
export interface GlobalOptions {
  config?: string;
}

/**
 * What local commands work with, opened lazily: the config is always
 * loaded, the database only by commands that need it. `close()` releases
 * the database; call it once.
 */
export class CliContext {
  readonly loaded: LoadedConfig;
  readonly layout: DataLayout;
  private db?: Db;
  private service?: VmService;
  private snapshotManager?: SnapshotManager;
  private networks?: NetworkManager;

  constructor(options: GlobalOptions) {
    this.loaded = loadConfig({ configPath: options.config });
    this.layout = dataLayout(this.loaded.config.dataDir);
  }

  get config() {
    return this.loaded.config;
  }

  database(): Db {
    this.db ??= openDatabase(this.layout.database);
    return this.db;
  }

  /** Snapshots for listing and removal only: no VM is created, so no network setup happens. */
  snapshotCatalog(): SnapshotManager {
    return new SnapshotManager(
      this.layout,
      new VmService({ layout: this.layout, repo: new VmRepository(this.database()), drivers: createDrivers(this.config), stopTimeoutMs: this.config.vmm.qemu.stopTimeoutMs }),
    );
  }

  async snapshots(): Promise<SnapshotManager> {
    this.snapshotManager ??= new SnapshotManager(this.layout, await this.vmService());
    return this.snapshotManager;
  }

  /**
   * The VM service, with a network manager when some profile enables
   * networking (which sets up the host side, so it needs root).
   */
  async vmService(): Promise<VmService> {
    if (this.service) return this.service;
    const repo = new VmRepository(this.database());
    const networking = await prepareNetworking(this.config, this.database(), repo);
    this.networks = networking?.manager;
    this.service ??= new VmService({
      layout: this.layout,
      repo,
      drivers: createDrivers(this.config),
      stopTimeoutMs: this.config.vmm.qemu.stopTimeoutMs,
      ...(networking ? { networks: networking.manager } : {}),
    });
    return this.service;
  }

  async close(): Promise<void> {
    await this.service?.stopAll('CLI exiting');
    // Refused (and kept) while another process still has VM networks.
    await this.networks?.removeHost().catch(() => undefined);
    this.db?.close();
  }
}

/** Runs a command body with a context that is closed afterwards; by default SIGINT/SIGTERM stop its VMs and exit 130. */
export type WithContext = (fn: (ctx: CliContext, global: GlobalOptions) => Promise<number>, options?: { handleSignals?: boolean }) => Promise<number>;
