import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../api/app.js';
import type { ApiDeps } from '../api/deps.js';
import type { PoolConfig, Profile } from '../config/index.js';
import { PoolNotFoundError } from '../errors/index.js';
import { Pool } from '../pool/pool.js';
import { canRunFakeVms, compileFakeGuest, openFakeRuntime, type FakeRuntime } from '../testing/fake-runtime.js';
import { DaemonUnavailableError, PoolExhaustedError, TfcClient, TfcError, VmNotFoundError, type ProcessEvent } from './index.js';

// The client against a listening app whose pool hands out fake-driver VMs
// (the real guest agent on this host): every call takes its real path
// through HTTP, the routes, the pool and the agent.
const TOKEN = 'client-test-token-0123456789';

if (!canRunFakeVms) console.warn('client tests skipped: gcc is not installed');

const poolConfig: PoolConfig = {
  name: 'p',
  profile: 'minimal',
  min: 1,
  max: 1,
  target: 1,
  mode: 'fresh',
  prewarmState: 'running',
  rewarm: false,
  refillConcurrency: 1,
  strategy: 'first-available',
  strategySeed: 1,
  maxUses: 100,
  maxAgeMs: 3_600_000,
  healthIntervalMs: 3_600_000,
  allocateTimeoutMs: 0,
  leaseMs: 600_000,
  maxLeaseMs: 3_600_000,
};

describe.skipIf(!canRunFakeVms)('TfcClient (fake driver, real agent, listening app)', () => {
  let guest: Awaited<ReturnType<typeof compileFakeGuest>>;
  let rt: FakeRuntime;
  let pool: Pool;
  let app: FastifyInstance;
  let client: TfcClient;
  let base = '';

  beforeAll(async () => {
    guest = await compileFakeGuest();
    rt = openFakeRuntime(guest.agentBinary);
    pool = new Pool(poolConfig, { name: 'minimal' } as Profile, {
      create: () => rt.service.create({ profile: rt.profile }),
      destroy: (vm, reason) => rt.service.destroy(vm, reason),
    });
    const pools = {
      list: () => [pool.status()],
      get: (name: string) => {
        if (name !== pool.name) throw new PoolNotFoundError(`no pool named "${name}"; pools: p`, { details: { name } });
        return pool;
      },
      poolOf: (id: string) => (pool.member(id) ? pool : undefined),
    };
    const deps = { token: TOKEN, version: '0.0.0-test', pools, service: rt.service, repo: rt.repo } as unknown as ApiDeps;
    app = await buildApp(deps);
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    client = new TfcClient({ url: base, token: TOKEN });
    pool.start();
  }, 120_000);

  afterAll(async () => {
    await pool?.stop();
    await app?.close();
    await rt?.close();
    guest?.remove();
  });

  const ready = async () => {
    const end = Date.now() + 30_000;
    while ((await client.getPool('p')).ready < 1) {
      if (Date.now() > end) throw new Error('pool p did not fill');
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('allocate -> exec -> process output (resumed after a forced disconnect) -> files -> release', async () => {
    await ready();
    const health = await client.health();
    expect(health.pools).toEqual([expect.objectContaining({ name: 'p', ready: 1 })]);
    const { vm, allocation_ms } = await client.allocate('p', { ttl_ms: 120_000, owner: 'client-test' });
    expect(vm).toMatchObject({ pool: 'p', allocated: true, state: 'running' });
    expect(allocation_ms).toBeGreaterThanOrEqual(0);
    expect((await client.listVms()).map((v) => v.id)).toContain(vm.id);
    expect((await client.keepalive(vm.id, { ttl_ms: 60_000 })).expires_at).toEqual(expect.any(String));

    const r = await client.exec(vm.id, { cmd: ['sh', '-c', 'echo hi; echo oops >&2; exit 3'] });
    expect(r).toMatchObject({ exit_code: 3, stdout: 'hi\n', stderr: 'oops\n' });

    // The output iterator, with a fetch that cuts the first output stream mid-way (mid-event, even).
    const outputHeaders: Array<string | null> = [];
    let cut = false;
    const cutting = new TfcClient({
      url: base,
      token: TOKEN,
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        if (!String(input).includes('/output')) return res;
        outputHeaders.push(new Headers(init?.headers).get('last-event-id'));
        if (cut || !res.body) return res;
        cut = true;
        const reader = res.body.getReader();
        let seen = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const { done, value } = await reader.read();
            if (done) return controller.close();
            seen += value.length;
            if (seen > 150) {
              controller.enqueue(value.subarray(0, Math.max(1, value.length - (seen - 150))));
              await reader.cancel();
              controller.error(new TypeError('terminated'));
              return;
            }
            controller.enqueue(value);
          },
        });
        return new Response(body, { status: res.status, headers: res.headers });
      },
    });
    const { pid } = await cutting.spawn(vm.id, { cmd: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line$i; sleep 0.05; done; exit 7'] });
    const events: ProcessEvent[] = [];
    for await (const e of cutting.output(vm.id, pid, { reconnectDelayMs: 20 })) events.push(e);
    expect(cut).toBe(true);
    expect(outputHeaders.length).toBeGreaterThanOrEqual(2);
    expect(outputHeaders[0]).toBeNull();
    expect(Number(outputHeaders[1])).toBeGreaterThan(0);
    const stdout = events.flatMap((e) => (e.type === 'stdout' ? [e.data] : [])).join('');
    expect(stdout).toBe(Array.from({ length: 12 }, (_, i) => `line${i + 1}\n`).join(''));
    const ids = events.flatMap((e) => (e.id === undefined ? [] : [e.id]));
    expect(new Set(ids).size).toBe(ids.length);
    expect(events.at(-1)).toMatchObject({ type: 'exit', exit_code: 7, signal: null });
    expect((await client.listProcesses(vm.id)).find((p) => p.pid === pid)).toMatchObject({ running: false, exit_code: 7 });

    // stdin and signals on a second process; resuming from an id skips what came before it.
    const cat = await client.spawn(vm.id, { cmd: ['cat'] });
    await client.writeStdin(vm.id, cat.pid, 'first\n');
    await client.writeStdin(vm.id, cat.pid, Buffer.from('second\n'), { eof: true });
    const catEvents: ProcessEvent[] = [];
    for await (const e of client.output(vm.id, cat.pid, { encoding: 'base64' })) catEvents.push(e);
    const catOut = catEvents.flatMap((e) => (e.type === 'stdout' ? [Buffer.from(e.data, 'base64').toString()] : [])).join('');
    expect(catOut).toBe('first\nsecond\n');
    const exitEvent = catEvents.at(-1)!;
    const after: ProcessEvent[] = [];
    for await (const e of client.output(vm.id, cat.pid, { lastEventId: exitEvent.id! - 1 })) after.push(e);
    expect(after).toEqual([exitEvent]);
    const sleeper = await client.spawn(vm.id, { cmd: ['sleep', '30'] });
    await client.signal(vm.id, sleeper.pid, 'SIGKILL');
    let last: ProcessEvent | undefined;
    for await (const e of client.output(vm.id, sleeper.pid)) last = e;
    expect(last).toMatchObject({ type: 'exit', exit_code: null, signal: 'SIGKILL' });
    await expect(client.resize(vm.id, sleeper.pid, { cols: 80, rows: 24 })).rejects.toBeInstanceOf(TfcError);

    // Files: a Buffer and an async iterable up, a Buffer and a stream down.
    const bytes = randomBytes(300 * 1024);
    await client.upload(vm.id, '/tmp/client-test/a.bin', bytes, { mode: '0600' });
    expect((await client.downloadBuffer(vm.id, '/tmp/client-test/a.bin')).equals(bytes)).toBe(true);
    async function* parts() {
      for (let i = 0; i < 50; i++) yield Buffer.from(`part ${i}\n`);
    }
    await client.upload(vm.id, '/tmp/client-test/b.txt', parts());
    await client.upload(vm.id, '/tmp/client-test/c.txt', Readable.from([Buffer.from('from a '), Buffer.from('node stream')]));
    expect((await client.downloadBuffer(vm.id, '/tmp/client-test/c.txt')).toString()).toBe('from a node stream');
    const chunks: Buffer[] = [];
    for await (const c of (await client.download(vm.id, '/tmp/client-test/b.txt')) as unknown as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
    expect(Buffer.concat(chunks).toString()).toBe(Array.from({ length: 50 }, (_, i) => `part ${i}\n`).join(''));
    await expect(client.downloadBuffer(vm.id, '/tmp/client-test/a.bin', { maxBytes: 1000 })).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(await client.mkdir(vm.id, { path: '/tmp/client-test/d/e', parents: true })).toEqual({ path: '/tmp/client-test/d/e', created: true });
    const list = await client.listFiles(vm.id, '/tmp/client-test');
    expect(list.entries.map((e) => `${e.name}:${e.type}`)).toEqual(['a.bin:file', 'b.txt:file', 'c.txt:file', 'd:dir']);
    const st = await client.stat(vm.id, '/tmp/client-test/a.bin');
    expect(st).toMatchObject({ type: 'file', size: bytes.length, mode: 0o600 });
    expect((await client.remove(vm.id, '/tmp/client-test', { recursive: true })).removed).toBe(6);
    await expect(client.stat(vm.id, '/tmp/client-test')).rejects.toBeInstanceOf(TfcError);

    await client.release(vm.id);
    const err = await client.exec(vm.id, { cmd: ['true'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TfcError);
    expect((err as TfcError).status).toBeGreaterThanOrEqual(400);
  }, 120_000);

  it('errors are typed by code: the registered class, the status and details', async () => {
    const missing = await client.getVm('vm-000000000000').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(VmNotFoundError);
    expect(missing).toMatchObject({ code: 'VM_NOT_FOUND', status: 404 });
    const pool404 = await client.getPool('nope').catch((e: unknown) => e);
    expect(pool404).toBeInstanceOf(PoolNotFoundError);
    expect((pool404 as TfcError).details).toEqual({ name: 'nope' });
    await expect(new TfcClient({ url: base, token: 'wrong-token' }).listVms()).rejects.toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
    await expect(client.exec('vm-000000000000', { cmd: [] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', status: 400 });
    const closed = await new TfcClient({ url: 'http://127.0.0.1:1' }).health().catch((e: unknown) => e);
    expect(closed).toBeInstanceOf(DaemonUnavailableError);
  });

  it('allocate retries POOL_EXHAUSTED after the delay the daemon asks for, and gets the VM once one is free', async () => {
    await ready();
    const held = await client.allocate('p', { timeout_ms: 0 });
    const attempts: Array<{ at: number; status: number; retryAfterMs?: number; header: string | null }> = [];
    const watching = new TfcClient({
      url: base,
      token: TOKEN,
      retry: { maxAttempts: 50, maxTotalMs: 60_000 },
      fetch: async (input, init) => {
        const at = performance.now();
        const res = await fetch(input, init);
        const body = (await res.clone().json()) as { error?: { details?: { retry_after_ms?: number } } };
        attempts.push({
          at,
          status: res.status,
          header: res.headers.get('retry-after'),
          ...(body.error?.details?.retry_after_ms !== undefined && { retryAfterMs: body.error.details.retry_after_ms }),
        });
        return res;
      },
    });
    // Without retries the same call fails at once, typed.
    await expect(new TfcClient({ url: base, token: TOKEN, retry: false }).allocate('p', { timeout_ms: 0 })).rejects.toBeInstanceOf(PoolExhaustedError);
    setTimeout(() => void client.release(held.vm.id), 300);
    const got = await watching.allocate('p', { timeout_ms: 0 });
    expect(got.vm.id).not.toBe(held.vm.id);
    expect(attempts[0]).toMatchObject({ status: 503, header: expect.stringMatching(/^\d+$/) });
    expect(attempts.at(-1)!.status).toBe(201);
    for (let i = 1; i < attempts.length; i++) {
      const asked = attempts[i - 1].retryAfterMs ?? 0;
      expect(attempts[i].at - attempts[i - 1].at).toBeGreaterThanOrEqual(asked - 5);
    }
    await client.release(got.vm.id);
  }, 90_000);
});
