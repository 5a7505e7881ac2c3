import { loadConfig, type Config } from '../config/index.js';
import { composeRuntime } from '../runtime/index.js';
import type { SnapshotManager } from '../snapshot/index.js';
import type { DataLayout, Db, VmRepository } from '../store/index.js';
import type { VmService } from '../vm/index.js';

/** What every benchmark needs: config (from the usual lookup), store, a VM service, snapshots. Call `close()` at the end. */
export interface BenchEnv {
  config: Config;
  layout: DataLayout;
  db: Db;
  repo: VmRepository;
  service: VmService;
  snapshots: SnapshotManager;
  close(): Promise<void>;
}

/** The runtime the CLI and the daemon use too (composeRuntime), so benchmarks measure the same wiring. */
export async function openBenchEnv(): Promise<BenchEnv> {
  const { config } = loadConfig();
  const runtime = await composeRuntime(config);
  const close = () => runtime.close('benchmark finished');
  process.once('SIGINT', () => void close().finally(() => process.exit(130)));
  return { config, layout: runtime.layout, db: runtime.db, repo: runtime.repo, service: runtime.service, snapshots: runtime.snapshots, close };
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
