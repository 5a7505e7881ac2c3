import { loadConfig, type Config } from '../config/index.js';
import { dataLayout, openDatabase, VmRepository, type DataLayout, type Db } from '../store/index.js';
import { VmService } from '../vm/index.js';
import { createDrivers } from '../vmm/index.js';

/** What every benchmark needs: config (from the usual lookup), store, a VM service. Call `close()` at the end. */
export interface BenchEnv {
  config: Config;
  layout: DataLayout;
  db: Db;
  repo: VmRepository;
  service: VmService;
  close(): Promise<void>;
}

export function openBenchEnv(): BenchEnv {
  const { config } = loadConfig();
  const layout = dataLayout(config.dataDir);
  const db = openDatabase(layout.database);
  const repo = new VmRepository(db);
  const service = new VmService({ layout, repo, drivers: createDrivers(config), stopTimeoutMs: config.vmm.qemu.stopTimeoutMs });
  const close = async () => {
    await service.stopAll('benchmark finished');
    db.close();
  };
  process.once('SIGINT', () => void close().finally(() => process.exit(130)));
  return { config, layout, db, repo, service, close };
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export function intArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}
