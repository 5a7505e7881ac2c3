import { createHash } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { startDaemon, type Daemon } from '../../src/daemon/index.js';
import { ERROR_REGISTRY, isErrorCode } from '../../src/errors/index.js';
import { scratchDir, testDataDir, writeConfig, jsonApi } from '../helpers.js';
import { assertOwnVmsGone } from './own-leftovers.js';

/**
 * Property-based fuzzing of the REST API of a real daemon (golden snapshot,
 * warm pool, real VMs under QEMU): generated requests with every method,
 * odd paths and ids, bodies of the wrong type, NUL bytes, huge numbers,
 * wrong content types and missing or wrong tokens. Properties:
 *
 * - no 5xx except the documented guest faults (GUEST_FAULTS below);
 * - every answer with status >= 400 is `{error: {code, message}}` with a
 *   registered code whose status is the answer's status;
 * - afterwards the daemon is alive and serving: a fresh allocation runs a
 *   real command, and a streamed file round-trips with its SHA-256 intact.
 *
 * Commands sent to the allocated VM come from a harmless set (plus random
 * names the guest does not have), and the fuzzer never releases it nor
 * shortens its lease, so exec and file requests keep reaching the guest.
 */
const TOKEN = 'fuzz-token-0123456789abcdef';
const RUNS = Number(process.env.TFC_FUZZ_RUNS ?? 1000);
/** 5xx a client can cause that are faults of the guest, not of the daemon (docs/api.md, "Limits and hostile requests"). */
const GUEST_FAULTS = new Set(['AGENT_ERROR', 'POOL_EXHAUSTED']);

/** encodeURIComponent, except that a lone surrogate becomes its raw (invalid UTF-8) percent form instead of throwing. */
function enc(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return '%ED%A0%80';
  }
}

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array<ArrayBuffer>;
}

describe('REST API under property-based fuzzing (real daemon, real VMs)', () => {
  const dir = scratchDir('tfc-fuzz-');
  let daemon: Daemon;
  let vmId = '';
  const auth = { authorization: `Bearer ${TOKEN}` };
  const seen = new Map<string, number>();
  /** One example request per 5xx status and code, printed for the record. */
  const samples = new Map<string, string>();

  const api = jsonApi(() => daemon.url, auth);

  beforeAll(async () => {
    // allocate_timeout_ms = 1000: a generated allocation without timeout_ms waits at most 1 s, like the
    // ones with it (a full pool otherwise holds it for the whole default wait, past the client's abort);
    // this test's own allocations ask for 120 s explicitly.
    const config = writeConfig(
      dir.path,
      '[pools.default]\nmin = 1\nmax = 2\ntarget = 1\nhealth_interval_ms = 1000\nallocate_timeout_ms = 1000\nlease_ms = 3600000\n',
    );
    const loaded = loadConfig({ configPath: config, env: { TFC_DATA_DIR: testDataDir() } });
    daemon = await startDaemon(loaded.config, { listen: '127.0.0.1:0', env: { TFC_TOKEN: TOKEN }, logger: pino({ level: 'silent' }) });
    const alloc = await api('POST', '/v1/pools/default/allocate', { timeout_ms: 120_000 });
    expect(alloc.status).toBe(201);
    vmId = alloc.json.vm.id;
  });

  afterAll(async () => {
    await daemon?.close();
    dir.remove();
    assertOwnVmsGone(join(testDataDir(), 'tfc.db'));
    console.log(`[api-fuzz] answers by status and code: ${JSON.stringify(Object.fromEntries([...seen].sort()))}`);
    for (const [key, what] of samples) console.log(`[api-fuzz] e.g. ${key}: ${what}`);
  });

  // --- generators --------------------------------------------------------
  const nasty = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constantFrom('', '\u0000', 'a\u0000b', '..', '../../etc/passwd', '%00', '%', '%zz', '\uffff', '\ud800', 'é', ' ', '?', '#', '//', '\n', '\r\n'),
  );
  const id = () =>
    fc.oneof(
      { weight: 6, arbitrary: fc.constant(vmId) },
      fc.constant('vm-000000000000'),
      fc.stringMatching(/^vm-[0-9a-f]{12}$/),
      fc.integer({ min: 100, max: 5000 }).map((n) => 'v'.repeat(n)),
      nasty.map((s) => enc(s)),
      nasty,
    );
  const guestPath = fc.oneof(
    { weight: 4, arbitrary: fc.stringMatching(/^[a-z0-9._-]{1,20}$/).map((s) => `/tmp/fuzz/${s}`) },
    fc.constantFrom('/etc/hostname', '/nonexistent/file', '/tmp', '/', '/proc/self/status', 'relative/path', '/tmp/a\u0000b', ''),
    fc.integer({ min: 4000, max: 5000 }).map((n) => `/${'p'.repeat(n)}`),
    nasty.map((s) => `/tmp/fuzz/${s}`),
  );
  const argv = fc.oneof(
    {
      weight: 5,
      arbitrary: fc
        .tuple(fc.constantFrom('echo', 'printf', 'true', 'false', 'cat', 'ls', 'env', 'pwd', 'id', 'uname'), fc.array(nasty, { maxLength: 5 }))
        .map(([p, a]) => [p, ...a]),
    },
    fc.constant(['head', '-c', '64', '/dev/urandom']),
    fc.array(nasty, { minLength: 0, maxLength: 4 }),
    fc.constant(['ec\u0000ho', 'hi']),
    fc.array(fc.constant('x'), { minLength: 4097, maxLength: 4100 }),
  );
  const number = fc.oneof(
    fc.integer(),
    fc.constantFrom(0, -1, 1.5, 1e300, -1e300, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 600_000, 600_001, 86_400_001),
    fc.double(),
  );
  const wrongType = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.string({ maxLength: 10 }),
    number,
    fc.array(fc.integer(), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
  );
  /** Mostly valid, sometimes of the wrong type: most exec bodies should reach the guest. */
  const mostly = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 6, arbitrary: valid }, wrongType);
  const execBody = fc
    .tuple(
      fc.record(
        {
          cmd: fc.oneof({ weight: 12, arbitrary: argv }, wrongType),
          stdin: mostly(fc.string({ maxLength: 100 })),
          env: mostly(fc.dictionary(fc.oneof({ weight: 5, arbitrary: fc.stringMatching(/^[A-Z_]{1,8}$/) }, nasty), nasty, { maxKeys: 4 })),
          cwd: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('/', '/tmp') }, guestPath, wrongType),
          timeout_ms: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 20_000 }) }, number, wrongType),
          output_encoding: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('utf8', 'base64') }, fc.constantFrom('hex', ''), wrongType),
        },
        { requiredKeys: [] },
      ),
      // Rarely an unknown field (which is a 400).
      fc.oneof({ weight: 10, arbitrary: fc.constant(null) }, wrongType),
    )
    .map(([b, bogus]) => (bogus === null ? b : { ...b, bogus }));
  // Allocation bodies wait at most 1 s: the fuzzer must not sit in an exhausted pool's queue.
  const allocateBody = fc
    .record(
      {
        owner: fc.oneof(nasty, wrongType),
        timeout_ms: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constantFrom(-1, 1.5, 600_001, 1e300), wrongType),
        ttl_ms: fc.oneof(fc.integer({ min: 0, max: 10_000_000 }), wrongType),
      },
      { requiredKeys: [] },
    )
    .map((b) => (typeof b.timeout_ms === 'number' && b.timeout_ms >= 0 && b.timeout_ms <= 600_000 ? { ...b, timeout_ms: Math.min(b.timeout_ms, 1000) } : b));
  const jsonBody = fc.oneof(
    { weight: 4, arbitrary: execBody },
    allocateBody,
    fc.jsonValue({ maxDepth: 3 }),
    fc.record({ address: nasty, prefix: number, gateway: nasty }, { requiredKeys: [] }),
  );
  const authHeader = fc.oneof(
    { weight: 8, arbitrary: fc.constant<Record<string, string>>(auth) },
    fc.constant<Record<string, string>>({}),
    fc.constantFrom('Bearer nope', 'Basic dXNlcjpwdw==', 'Bearer', `Bearer ${TOKEN}x`, `bearer  ${TOKEN}`, TOKEN).map((a) => ({ authorization: a })),
  );
  const contentType = fc.oneof(
    { weight: 6, arbitrary: fc.constant('application/json') },
    fc.constantFrom(
      'text/plain',
      'application/octet-stream',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json; charset=latin1',
      'nonsense',
      '',
    ),
  );
  const body = fc.oneof(
    { weight: 6, arbitrary: jsonBody.map((b) => JSON.stringify(b)) },
    fc.constantFrom('{', '{"cmd":', 'null', '[]', '"x"', '{"__proto__":{"a":1}}', '{"constructor":{"prototype":{}}}', '\u0000', ''),
    fc.uint8Array({ maxLength: 4096 }).map((a) => Uint8Array.from(a)),
  );

  const anyMethod = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS');
  /** Mostly the route's own method (so requests get past the router), sometimes any. */
  const method = (own: string) => fc.oneof({ weight: 4, arbitrary: fc.constant(own) }, anyMethod);
  // Built lazily: the allocated VM's id is known only after beforeAll.
  const route = () =>
    fc.oneof(
      {
        weight: 8,
        arbitrary: fc.tuple(
          method('POST'),
          id().map((i) => `/v1/vms/${i}/exec`),
        ),
      },
      {
        weight: 3,
        arbitrary: fc.tuple(
          fc.oneof(method('PUT'), method('GET')),
          fc
            .tuple(id(), guestPath, fc.option(fc.constantFrom('644', '0755', '999', 'rwx', '')))
            .map(([i, p, m]) => `/v1/vms/${i}/files?path=${enc(p)}${m === null ? '' : `&mode=${m}`}`),
        ),
      },
      fc.tuple(
        method('GET'),
        id().map((i) => `/v1/vms/${i}`),
      ),
      fc.tuple(
        method('POST'),
        fc.tuple(id(), fc.constantFrom('pause', 'resume', 'keepalive', 'network', 'nope', '')).map(([i, op]) => `/v1/vms/${i}/${op}`),
      ),
      fc.tuple(
        method('GET'),
        fc.constantFrom('/v1/health', '/v1/pools', '/v1/vms', '/v1/metrics', '/v1/openapi.json', '/', '/v2/vms', '/v1/pools/default', '/v1/pools/nope'),
      ),
      fc.tuple(method('POST'), fc.constantFrom('/v1/pools/default/allocate')),
      fc.tuple(
        anyMethod,
        fc.string({ maxLength: 50 }).map((s) => `/v1/${enc(s)}`),
      ),
      fc.tuple(
        method('POST'),
        nasty.map((s) => `/v1/pools/${enc(s)}/allocate`),
      ),
      fc.tuple(
        anyMethod,
        fc.integer({ min: 15_000, max: 20_000 }).map((n) => `/v1/vms?${'q'.repeat(n)}`),
      ),
    );

  /** Well-formed requests to the allocated VM, with hostile content: they get past auth and routing to the validators and the guest. */
  const toVm = (): fc.Arbitrary<FuzzRequest> =>
    fc.oneof(
      {
        weight: 6,
        arbitrary: execBody.map((b) => ({
          method: 'POST',
          path: `/v1/vms/${vmId}/exec`,
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify(b),
        })),
      },
      fc.tuple(guestPath, fc.uint8Array({ maxLength: 256 * 1024 })).map(([p, data]) => ({
        method: 'PUT',
        path: `/v1/vms/${vmId}/files?path=${enc(p)}`,
        headers: { ...auth, 'content-type': 'application/octet-stream' },
        body: Uint8Array.from(data),
      })),
      guestPath.map((p) => ({ method: 'GET', path: `/v1/vms/${vmId}/files?path=${enc(p)}`, headers: auth })),
    );

  const request = (): fc.Arbitrary<FuzzRequest> => fc.oneof(toVm(), anyRequest());

  const anyRequest = (): fc.Arbitrary<FuzzRequest> =>
    fc
      .tuple(route(), authHeader, fc.option(fc.tuple(contentType, body), { freq: 4 }))
      .map(([[method, path], headers, payload]) => {
        const r: FuzzRequest = { method, path, headers: { ...headers } };
        if (payload && method !== 'GET' && method !== 'HEAD') {
          if (payload[0]) r.headers['content-type'] = payload[0];
          r.body = payload[1];
        }
        return r;
      })
      // The allocated VM stays allocated: releasing it (or shortening its lease) would turn the rest of the run into 404s.
      .filter((r) => !(r.method === 'DELETE' && r.path === `/v1/vms/${vmId}`) && r.path !== `/v1/vms/${vmId}/keepalive`);

  it(`answers ${RUNS} generated hostile requests with the envelope and no daemon fault`, async () => {
    let reachedGuest = 0;
    await fc.assert(
      fc.asyncProperty(request(), async (r) => {
        const res = await fetch(`${daemon.url}${r.path}`, { method: r.method, headers: r.headers, body: r.body, signal: AbortSignal.timeout(120_000) });
        const text = r.method === 'HEAD' ? '' : await res.text();
        const what = `${r.method} ${r.path.slice(0, 100)} -> ${res.status} ${text.slice(0, 300)}`;
        let code = '';
        if (res.status >= 400 && r.method !== 'HEAD') {
          const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
          expect(Object.keys(parsed), what).toEqual(['error']);
          expect(isErrorCode(parsed.error?.code), what).toBe(true);
          code = parsed.error!.code as string;
          expect(typeof parsed.error?.message, what).toBe('string');
          expect(ERROR_REGISTRY[code as keyof typeof ERROR_REGISTRY].status, what).toBe(res.status);
        }
        // A HEAD answer has no body to name its code: its status must be one a guest fault answers with.
        const guestFault =
          r.method === 'HEAD' ? [...GUEST_FAULTS].some((c) => ERROR_REGISTRY[c as keyof typeof ERROR_REGISTRY].status === res.status) : GUEST_FAULTS.has(code);
        if (res.status >= 500) expect(guestFault, `undocumented 5xx: ${what}`).toBe(true);
        if (res.status === 200 && r.path === `/v1/vms/${vmId}/exec`) reachedGuest += 1;
        const key = `${res.status}${code ? ` ${code}` : ''}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        if (res.status >= 500 && !samples.has(key)) samples.set(key, what);
        // Paused by a generated request: resume so later requests still reach the guest.
        if (r.path === `/v1/vms/${vmId}/pause` && res.status === 200) await api('POST', `/v1/vms/${vmId}/resume`);
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    console.log(`[api-fuzz] ${RUNS} requests, ${reachedGuest} execs ran in the guest`);
    // The run must have exercised the guest, not only the validators.
    expect(reachedGuest).toBeGreaterThan(RUNS / 50);
  }, 1_800_000);

  it('is alive and serving afterwards: a fresh allocation runs a command and streams a file both ways', async () => {
    expect((await api('GET', '/v1/health')).status).toBe(200);
    // The fuzzed VM may have been paused or its lease changed; a new allocation proves the pool still works.
    await api('DELETE', `/v1/vms/${vmId}`);
    const alloc = await api('POST', '/v1/pools/default/allocate', { timeout_ms: 120_000 });
    expect(alloc.status).toBe(201);
    const id2 = alloc.json.vm.id;
    const exec = await api('POST', `/v1/vms/${id2}/exec`, { cmd: ['sh', '-c', 'printf "\\377\\000ok"'], output_encoding: 'base64' });
    expect(exec.status).toBe(200);
    expect(Buffer.from(exec.json.stdout, 'base64')).toEqual(Buffer.from([0xff, 0x00, 0x6f, 0x6b]));

    // 24 MiB: larger than any agent frame, so it can only have moved in chunks.
    const data = Buffer.alloc(24 * 1024 * 1024);
    for (let at = 0; at < data.length; at += 32) createHash('sha256').update(String(at)).digest().copy(data, at);
    const put = await fetch(`${daemon.url}/v1/vms/${id2}/files?path=/tmp/big.bin`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: data,
    });
    expect(put.status).toBe(204);
    const sum = await api('POST', `/v1/vms/${id2}/exec`, { cmd: ['sha256sum', '/tmp/big.bin'], timeout_ms: 120_000 });
    expect(sum.json.stdout.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
    const got = Buffer.from(await (await fetch(`${daemon.url}/v1/vms/${id2}/files?path=/tmp/big.bin`, { headers: auth })).arrayBuffer());
    expect(got.length).toBe(data.length);
    expect(got.equals(data)).toBe(true);
    expect((await api('DELETE', `/v1/vms/${id2}`)).status).toBe(204);
  }, 600_000);
});
