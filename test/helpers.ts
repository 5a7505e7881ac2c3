import { pino } from 'pino';
import { loadConfig } from '../src/config/index.js';
import { startDaemon, type Daemon } from '../src/daemon/index.js';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCommand } from '../src/process/index.js';

export const REPO = resolve(import.meta.dirname, '..');
export const TFC_BIN = join(REPO, 'bin', 'tfc.js');

/** The data dir prepared by global-setup (image built). */
export function testDataDir(): string {
  const dir = process.env.TFC_TEST_DATA_DIR;
  if (!dir) throw new Error('TFC_TEST_DATA_DIR not set: run the integration tests through vitest (test/global-setup.ts)');
  return dir;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `tfc` binary (compiled dist/) with a config file pointing at `dataDir`. */
export function runTfc(args: string[], options: { dataDir?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [TFC_BIN, ...args], {
      env: { ...process.env, TFC_DATA_DIR: options.dataDir ?? testDataDir(), TFC_CONFIG: '', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 180_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** PIDs of QEMU processes whose command line mentions `marker` (a data dir), so parallel users of the machine are not counted. */
export async function qemuProcessesUsing(marker: string): Promise<number[]> {
  const out = await runCommand('pgrep', ['-f', `qemu-system-x86_64.*${marker}`], { allowFailure: true });
  return out.stdout.toString().split('\n').filter(Boolean).map(Number);
}

/** Everything that must be gone after a VM is destroyed: processes, run dirs (sockets), temp build dirs. */
export async function assertNothingLeft(dataDir: string): Promise<void> {
  const pids = await qemuProcessesUsing(dataDir);
  const runDir = join(dataDir, 'run', 'vms');
  const runLeft = existsSync(runDir) ? readdirSync(runDir) : [];
  const tmpDir = join(dataDir, 'tmp');
  const tmpLeft = existsSync(tmpDir) ? readdirSync(tmpDir) : [];
  const problems = [
    pids.length ? `QEMU processes still running: ${pids.join(', ')}` : '',
    runLeft.length ? `run dirs left: ${runLeft.join(', ')}` : '',
    tmpLeft.length ? `temp files left: ${tmpLeft.join(', ')}` : '',
  ].filter(Boolean);
  if (problems.length) throw new Error(problems.join('; '));
}

/** A scratch directory removed by the returned function. */
export function scratchDir(prefix = 'tfc-it-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function writeConfig(dir: string, toml: string): string {
  const path = join(dir, 'tfc.toml');
  writeFileSync(path, toml);
  return path;
}

/** A JSON client of a test daemon: `url()` is read at each call (the daemon starts later); answers status and parsed body. */
export function jsonApi(url: () => string, auth: { authorization: string }) {
  // Tests read whatever fields they assert on; the API's own schemas are checked by the API tests.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return async (method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> => {
    const res = await fetch(`${url()}${path}`, {
      method,
      headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
}

/** Polls `cond` every 50 ms until it holds; throws naming `what` after `ms`. */
export async function until(what: string, cond: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`not reached in ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts a daemon on real VMs whose default pool holds one VM, and allocates
 * it: for tests of one VM through the API. Close the daemon after.
 */
export async function startOneVmDaemon(dir: string, token: string): Promise<{ daemon: Daemon; vmId: string }> {
  const config = writeConfig(dir, '[pools.default]\nmin = 1\nmax = 1\ntarget = 1\nallocate_timeout_ms = 120000\n');
  const loaded = loadConfig({ configPath: config, env: { TFC_DATA_DIR: testDataDir() } });
  const daemon = await startDaemon(loaded.config, { listen: '127.0.0.1:0', env: { TFC_TOKEN: token }, logger: pino({ level: 'silent' }) });
  try {
    const api = jsonApi(() => daemon.url, { authorization: `Bearer ${token}` });
    await until('pool ready', async () => (await api('GET', '/v1/pools/default')).json.ready >= 1, 300_000);
    const alloc = await api('POST', '/v1/pools/default/allocate', {});
    if (alloc.status !== 201) throw new Error(`allocate answered ${alloc.status}: ${JSON.stringify(alloc.json)}`);
    return { daemon, vmId: alloc.json.vm.id };
  } catch (err) {
    await daemon.close();
    throw err;
  }
}
