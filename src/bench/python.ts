/**
 * Runtime-image targets (issue 9), measured side by side in one run:
 *
 * 1. clone of the `python` golden snapshot to the first line printed by
 *    `python3 -c 'print(1)'`, as a ratio of a cold boot of the same profile
 *    to the same line (goal <= 10%); runs interleaved;
 * 2. `POST /v1/run` python hello-world through a daemon with a `python`
 *    pool: p50 / p99 (request to response, the VM allocated, the code
 *    written and run, the VM released);
 * 3. the daemon's RSS while a 1 GiB file goes up to a VM's scratch disk and
 *    back down through the REST API (sha256 compared).
 *
 * The `python` suite of `tfc bench`. Needs the `python` image
 * (`tfc image build python`). Reports, does not judge.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { resolveProfile, type Config } from '../config/index.js';
import { startDaemon } from '../daemon/index.js';
import type { Vm } from '../vm/index.js';
import { openBenchEnv, type BenchLog } from './common.js';

const PRINT_ONE = ['python3', '-c', 'print(1)'];

/** Milliseconds from `started` until the process's first stdout chunk (streamed), the process's exit otherwise. */
async function firstLineMs(vm: Vm, started: number): Promise<number> {
  const agent = vm.agent;
  let seen: number | undefined;
  let resolveExit!: () => void;
  const exited = new Promise<void>((r) => (resolveExit = r));
  let pid = -1;
  const off = agent.onProcessEvent((e) => {
    if (e.pid !== pid) return;
    if (e.type === 'stdout' && seen === undefined) seen = performance.now() - started;
    if (e.type === 'exit') resolveExit();
  });
  try {
    pid = (await agent.spawn({ argv: PRINT_ONE })).pid;
    await exited;
  } finally {
    off();
  }
  if (seen === undefined) throw new Error('python3 printed nothing');
  return seen;
}

async function cloneVsCold(config: Config, runs: number, log: BenchLog) {
  const env = await openBenchEnv(config);
  const profile = resolveProfile(env.config, 'python');
  await env.snapshots.ensure(profile);
  const cold: number[] = [];
  const clone: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      let started = performance.now();
      const a = await env.service.create({ profile });
      cold.push(await firstLineMs(a, started));
      await env.service.destroy(a);
      started = performance.now();
      const b = await env.snapshots.clone(profile);
      clone.push(await firstLineMs(b, started));
      await env.service.destroy(b);
      log(`run ${i + 1}/${runs}: cold boot to first line ${cold.at(-1)!.toFixed(0)} ms, clone ${clone.at(-1)!.toFixed(1)} ms`);
    }
  } finally {
    await env.close();
  }
  return { coldMs: cold, cloneMs: clone };
}

function benchConfig(base: Config, diskMib: number, rewarm = true): Config {
  const config: Config = { ...base, profiles: { ...base.profiles }, pools: { ...base.pools } };
  const python = resolveProfile(config, 'python');
  config.profiles['bench-python'] = { ...python, name: 'bench-python', diskMib };
  config.pools.python = { ...config.pools.default, name: 'python', profile: 'bench-python', min: 2, max: 2, target: 2, prewarmState: 'running', rewarm };
  config.pools.default = { ...config.pools.default, min: 0, max: 1, target: 0 };
  return config;
}

type PoolStatus = { status(): { ready: number; booting: number } };

async function withDaemon<T>(config: Config, fn: (url: string, headers: Record<string, string>, pool: PoolStatus) => Promise<T>): Promise<T> {
  const token = 'bench-token-0123456789abcdef';
  const daemon = await startDaemon(config, { listen: '127.0.0.1:0', env: { TFC_TOKEN: token }, logger: pino({ level: 'warn' }, pino.destination(2)) });
  try {
    const pool = daemon.pools.get('python');
    const deadline = Date.now() + 600_000;
    while (pool.status().ready < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return await fn(daemon.url, { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, pool);
  } finally {
    await daemon.close();
  }
}

/** Sequential runs, each with the pool settled (both VMs ready, nothing restoring), as the allocation suite's one-client figure. */
async function runRequests(config: Config, count: number, rewarm: boolean) {
  return withDaemon(benchConfig(config, 0, rewarm), async (url, headers, pool) => {
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const deadline = Date.now() + 120_000;
      while ((pool.status().ready < 2 || pool.status().booting > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const started = performance.now();
      const res = await fetch(`${url}/v1/run`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ language: 'python', code: 'print("hello, world")', pool: 'python' }),
      });
      const body = (await res.json()) as { stdout?: string; exit_code?: number; source?: string };
      times.push(performance.now() - started);
      if (res.status !== 200 || body.stdout !== 'hello, world\n' || body.source !== 'pool')
        throw new Error(`POST /v1/run answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
    }
    return times;
  });
}

function rssMib(): number {
  return process.memoryUsage.rss() / 1048576;
}

async function transfer(config: Config, mib: number) {
  return withDaemon(benchConfig(config, mib + 256), async (url, headers) => {
    const alloc = await fetch(`${url}/v1/pools/python/allocate`, { method: 'POST', headers, body: '{}' });
    const vm = ((await alloc.json()) as { vm: { id: string } }).vm.id;
    const baseline = rssMib();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMib())), 20);
    try {
      const chunk = randomBytes(1 << 20);
      const up = createHash('sha256');
      async function* body() {
        for (let i = 0; i < mib; i++) {
          up.update(chunk);
          yield chunk;
        }
      }
      const put = await fetch(`${url}/v1/vms/${vm}/files?path=/scratch/big`, {
        method: 'PUT',
        headers: { authorization: headers.authorization, 'content-type': 'application/octet-stream' },
        body: Readable.toWeb(Readable.from(body())) as ReadableStream,
        duplex: 'half',
      } as RequestInit);
      if (put.status >= 300) throw new Error(`upload answered ${put.status}: ${await put.text()}`);
      const get = await fetch(`${url}/v1/vms/${vm}/files?path=/scratch/big`, { headers: { authorization: headers.authorization } });
      if (get.status !== 200 || !get.body) throw new Error(`download answered ${get.status}`);
      const down = createHash('sha256');
      for await (const part of Readable.fromWeb(get.body as never)) down.update(part as Buffer);
      return { mib, baselineMib: baseline, peakMib: peak, sameSha256: up.digest('hex') === down.digest('hex') };
    } finally {
      clearInterval(sampler);
      await fetch(`${url}/v1/vms/${vm}`, { method: 'DELETE', headers: { authorization: headers.authorization } });
    }
  });
}

export interface PythonFigures {
  runs: number;
  /** `python3 -c 'print(1)'`: ms from the request to the first printed line, per run, cold boot and clone. */
  coldMs: number[];
  cloneMs: number[];
  /** `POST /v1/run` python hello-world request-to-response ms, pool with rewarm (the default) and without. */
  runRewarmMs: number[];
  runNoRewarmMs: number[];
  /** The daemon's RSS while `mib` MiB went up to a VM's scratch disk and back. */
  transfer: { mib: number; baselineMib: number; peakMib: number; sameSha256: boolean };
}

/** The three runtime-image measurements, in order; throws what the first failing one throws. */
export async function pythonFigures(config: Config, options: { runs: number; requests: number; transferMib: number; log?: BenchLog }): Promise<PythonFigures> {
  const log = options.log ?? (() => undefined);
  log('cold boot vs clone to the first printed line');
  const speed = await cloneVsCold(config, options.runs, log);
  log('POST /v1/run hello-world, pool with rewarm (default) and without');
  const runRewarmMs = await runRequests(config, options.requests, true);
  const runNoRewarmMs = await runRequests(config, options.requests, false);
  log(`daemon RSS during a ${options.transferMib} MiB upload and download`);
  const transferResult = await transfer(config, options.transferMib);
  return { runs: options.runs, ...speed, runRewarmMs, runNoRewarmMs, transfer: transferResult };
}
