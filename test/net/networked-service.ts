import { loadConfig, type Config } from '../../src/config/index.js';
import { NetworkManager } from '../../src/net/index.js';
import { dataLayout, openDatabase, VmRepository, type DataLayout, type Db } from '../../src/store/index.js';
import { LeaseRepository } from '../../src/store/lease-repository.js';
import { VmService } from '../../src/vm/index.js';
import { createDrivers } from '../../src/vmm/index.js';
import { EXPOSED_PORT, type Topology } from './topology.js';

/** A VmService whose VMs get networks inside `topo` (its host side is a namespace of the test), over the shared test data dir. */
export interface NetworkedService {
  config: Config;
  layout: DataLayout;
  db: Db;
  manager: NetworkManager;
  service: VmService;
  /** Stops every VM, removes the host side, closes the store and destroys the topology; the test then checks nothing is left. */
  close(): Promise<void>;
}

/** Creates `topo`, then the store, network manager and service on `dataDir`. */
export async function openNetworkedService(topo: Topology, dataDir: string): Promise<NetworkedService> {
  await topo.create();
  const { config } = loadConfig({ env: { TFC_DATA_DIR: dataDir } });
  const layout = dataLayout(dataDir);
  const db = openDatabase(layout.database);
  const manager = new NetworkManager({
    hostNetns: topo.hostNs,
    leases: new LeaseRepository(db),
    netnsPrefix: topo.vmNetnsPrefix,
    exposedPorts: [EXPOSED_PORT],
  });
  await manager.ensureHost();
  const service = new VmService({ layout, repo: new VmRepository(db), drivers: createDrivers(config), stopTimeoutMs: 3000, networks: manager });
  return {
    config,
    layout,
    db,
    manager,
    service,
    async close() {
      await service.stopAll('test finished');
      await manager.removeHost().catch(() => undefined);
      db.close();
      await topo.destroy();
    },
  };
}
