import { loadConfig, type LoadedConfig } from '../config/index.js';
import { dataLayout, openDatabase, VmRepository, type DataLayout, type Db } from '../store/index.js';
import { createDrivers } from '../vmm/index.js';
import { VmService } from '../vm/index.js';
import { SnapshotManager } from '../snapshot/index.js';

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

  snapshots(): SnapshotManager {
    this.snapshotManager ??= new SnapshotManager(this.layout, this.vmService());
    return this.snapshotManager;
  }

  vmService(): VmService {
    this.service ??= new VmService({
      layout: this.layout,
      repo: new VmRepository(this.database()),
      drivers: createDrivers(this.config),
      stopTimeoutMs: this.config.vmm.qemu.stopTimeoutMs,
    });
    return this.service;
  }

  async close(): Promise<void> {
    await this.service?.stopAll('CLI exiting');
    this.db?.close();
  }
}

/** Runs a command body with a context that is closed afterwards; by default SIGINT/SIGTERM stop its VMs and exit 130. */
export type WithContext = (fn: (ctx: CliContext, global: GlobalOptions) => Promise<number>, options?: { handleSignals?: boolean }) => Promise<number>;
