import { loadConfig, type LoadedConfig } from '../config/index.js';
import type { ComposeOptions, Runtime } from '../runtime/index.js';
import type { SnapshotManager } from '../snapshot/index.js';
import { dataLayout, type DataLayout } from '../store/layout.js';
import type { VmService } from '../vm/index.js';
import type { DriverName } from '../vmm/index.js';

/** The runtime module is loaded by the commands that make one: API clients and help never load the store or the drivers. */
async function compose(config: LoadedConfig['config'], options: ComposeOptions): Promise<Runtime> {
  const { composeRuntime } = await import('../runtime/compose.js');
  return composeRuntime(config, options);
}

/** Global CLI options shared by every command. */
export interface GlobalOptions {
  config?: string;
}

/**
 * What local commands work with, opened lazily: the config is always
 * loaded; the runtime (store, drivers, networking, VM service, snapshots;
 * see composeRuntime) only by commands that need it. `close()` stops the
 * VMs this process made and closes the store; call it once.
 */
export class CliContext {
  readonly loaded: LoadedConfig;
  readonly layout: DataLayout;
  private runtime?: Promise<Runtime>;
  private catalogRuntime?: Promise<Runtime>;

  constructor(options: GlobalOptions) {
    this.loaded = loadConfig({ configPath: options.config });
    this.layout = dataLayout(this.loaded.config.dataDir);
  }

  get config() {
    return this.loaded.config;
  }

  /** Snapshots for listing and removal only: no VM is created, so no network setup happens. */
  async snapshotCatalog(): Promise<SnapshotManager> {
    if (this.runtime) return (await this.runtime).snapshots;
    this.catalogRuntime ??= compose(this.config, { networking: false });
    return (await this.catalogRuntime).snapshots;
  }

  async snapshots(): Promise<SnapshotManager> {
    return (await this.vmRuntime()).snapshots;
  }

  /**
   * The VM service, with a network manager when some profile enables
   * networking (which sets up the host side, so it needs root). `probe`:
   * drivers the command will use, probed while the runtime loads (see
   * ComposeOptions.probe); only the first call composes, so pass it there.
   */
  async vmService(options: { probe?: readonly DriverName[] } = {}): Promise<VmService> {
    return (await this.vmRuntime(options.probe)).service;
  }

  private vmRuntime(probe?: readonly DriverName[]): Promise<Runtime> {
    this.runtime ??= compose(this.config, probe ? { probe } : {});
    return this.runtime;
  }

  async close(): Promise<void> {
    // A runtime that failed to compose has nothing open.
    for (const pending of [this.runtime, this.catalogRuntime]) {
      const runtime = await pending?.catch(() => undefined);
      await runtime?.close('CLI exiting');
    }
  }
}

/** Runs a command body with a context that is closed afterwards; by default SIGINT/SIGTERM stop its VMs and exit 130. */
export type WithContext = (fn: (ctx: CliContext, global: GlobalOptions) => Promise<number>, options?: { handleSignals?: boolean }) => Promise<number>;
