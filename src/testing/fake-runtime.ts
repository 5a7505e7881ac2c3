/**
 * Test support (not shipped behaviour): a data dir with a fake built image,
 * a real SQLite store and a VmService whose only driver is the FakeDriver
 * (the real agent on a Unix socket). Must not be imported by product code.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, resolveProfile } from '../config/index.js';
import { buildAgent } from '../guest/agent-build.js';
import { findExecutable } from '../process/index.js';
import { openDatabase, type Db } from '../store/database.js';
import { dataLayout, type DataLayout } from '../store/layout.js';
import { VmRepository } from '../store/vm-repository.js';
import { VmService, type VmProfile } from '../vm/vm-service.js';
import { writeFakeImage } from './data-dir-fixtures.js';
import { FakeDriver } from './fake-driver.js';

/** gcc builds the agent the fake driver runs; without it these tests skip. */
export const canRunFakeVms = findExecutable('gcc') !== null;

/** Compiles the agent once into a temp dir; `remove()` deletes it. */
export async function compileFakeGuest(): Promise<{ agentBinary: string; remove(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'tfc-fake-agent-'));
  const agentBinary = join(dir, 'tfc-agent');
  await buildAgent(agentBinary);
  return { agentBinary, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface FakeRuntime {
  dir: string;
  layout: DataLayout;
  db: Db;
  repo: VmRepository;
  driver: FakeDriver;
  service: VmService;
  /** The built-in default profile, with a boot timeout suited to the fake. */
  profile: VmProfile;
  /** Stops every VM, closes the store and removes the data dir. */
  close(): Promise<void>;
}

export function openFakeRuntime(agentBinary: string, options: { stopTimeoutMs?: number } = {}): FakeRuntime {
  const dir = mkdtempSync(join(tmpdir(), 'tfc-fake-runtime-'));
  const layout = dataLayout(dir);
  writeFakeImage(layout);
  const db = openDatabase(layout.database);
  const repo = new VmRepository(db);
  const driver = new FakeDriver(agentBinary);
  const service = new VmService({ layout, repo, drivers: { qemu: driver }, stopTimeoutMs: options.stopTimeoutMs ?? 1000 });
  const profile = { ...resolveProfile(defaultConfig({ env: {} })), bootTimeoutMs: 10_000 };
  return {
    dir,
    layout,
    db,
    repo,
    driver,
    service,
    profile,
    async close() {
      await service.stopAll('test finished');
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
