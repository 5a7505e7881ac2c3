import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '../testing/run-cli.js';

// The daemon-backed commands (`tfc pool ...`, `tfc vm ls|get|exec|rm`)
// against a stand-in daemon that answers like the REST API: what the user
// sees is what these commands print for the daemon's answers.

interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  body: unknown;
}

const VM = {
  id: 'vm-0123456789ab',
  pool: 'web',
  profile: 'default',
  state: 'running',
  driver: 'qemu',
  accel: 'tcg',
  created_by: 'restore',
  allocated: true,
  owner: 'alice',
  uses: 1,
  phases: [
    { name: 'restore-state', ms: 152.4 },
    { name: 'agent-ready', ms: 3.25 },
  ],
  network: { host_address: '10.200.0.6', guest_ip: '172.16.0.2', netns: 'tfc-abc' },
  expires_at: null,
  error: null,
};

const POOL = {
  name: 'web',
  profile: 'default',
  mode: 'fresh',
  strategy: 'fixed',
  prewarm_state: 'paused',
  min: 1,
  max: 4,
  target: 2,
  ready: 2,
  booting: 0,
  allocated: 1,
  demand_per_s: 0,
  refill_ms: null,
  last_error: null,
};

let server: Server;
let url: string;
let seen: Seen[] = [];
/** What the guest command of `vm exec` printed. */
let execStdout = Buffer.from('out\n');
/** The stand-in daemon's processes API: false answers 404 like a daemon without it. */
let processesApi = true;
/** SSE events of process 7's output; `hold` keeps the stream open until a signal arrives. */
let processEvents: Array<{ event: string; data: unknown }> = [];
let holdUntilSignal = false;
let onSignal: (() => void) | undefined;
/** Per-test override of the daemon's answer. */
let answer: ((req: Seen, res: ServerResponse) => boolean) | undefined;
let dir: string;
let configPath: string;

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let raw = '';
  for await (const c of req) raw += c;
  const s: Seen = { method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body: raw ? JSON.parse(raw) : undefined };
  seen.push(s);
  if (answer?.(s, res)) return;
  if (s.method === 'GET' && s.url === '/v1/pools') return send(res, 200, { pools: [POOL] });
  if (s.method === 'POST' && s.url === '/v1/pools/web/allocate') return send(res, 200, { vm: VM, allocation_ms: 2.5 });
  if (s.method === 'GET' && s.url === '/v1/vms')
    return send(res, 200, { vms: [VM, { ...VM, id: 'vm-ffffffffffff', pool: null, allocated: false, owner: null }] });
  if (s.method === 'GET' && s.url === `/v1/vms/${VM.id}`) return send(res, 200, VM);
  if (processesApi && s.method === 'POST' && s.url === `/v1/vms/${VM.id}/processes`) return send(res, 201, { pid: 7 });
  if (processesApi && s.method === 'GET' && s.url.startsWith(`/v1/vms/${VM.id}/processes/7/output`)) {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const write = (events: typeof processEvents, from: number) =>
      events.forEach((e, i) => res.write(`id: ${from + i}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`));
    write(processEvents, 1);
    if (!holdUntilSignal) return void res.end();
    onSignal = () => {
      write([{ event: 'exit', data: { exit_code: null, signal: 'SIGKILL', duration_ms: 5 } }], processEvents.length + 1);
      res.end();
    };
    return;
  }
  if (processesApi && s.method === 'POST' && s.url === `/v1/vms/${VM.id}/processes/7/stdin`) return send(res, 200, { bytes_accepted: 0 });
  if (processesApi && s.method === 'POST' && s.url === `/v1/vms/${VM.id}/processes/7/signal`) {
    res.writeHead(204);
    res.end();
    onSignal?.();
    return;
  }
  if (s.method === 'POST' && s.url === `/v1/vms/${VM.id}/exec`) {
    // Like the daemon: text unless the client asks for base64 of the exact bytes.
    const base64 = (s.body as { output_encoding?: string }).output_encoding === 'base64';
    const enc = (b: Buffer) => (base64 ? b.toString('base64') : b.toString('utf8'));
    return send(res, 200, {
      exit_code: 3,
      stdout: enc(execStdout),
      stderr: enc(Buffer.from('err\n')),
      timed_out: false,
      output_encoding: base64 ? 'base64' : 'utf8',
    });
  }
  if (s.method === 'POST' && s.url === `/v1/vms/${VM.id}/keepalive`) return send(res, 200, { ...VM, expires_at: '2026-12-01T10:00:00.000Z' });
  if (s.method === 'DELETE' && s.url.startsWith('/v1/vms/')) {
    res.writeHead(204);
    res.end();
    return;
  }
  send(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${s.method} ${s.url}` } });
}

beforeAll(async () => {
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = mkdtempSync(join(tmpdir(), 'tfc-cli-client-'));
  configPath = join(dir, 'tfc.toml');
  writeFileSync(configPath, `data_dir = "${join(dir, 'data')}"\n`);
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  seen = [];
  answer = undefined;
  execStdout = Buffer.from('out\n');
  processesApi = true;
  holdUntilSignal = false;
  onSignal = undefined;
  processEvents = [
    { event: 'stdout', data: { data: Buffer.from('out\n').toString('base64') } },
    { event: 'stderr', data: { data: Buffer.from('err\n').toString('base64') } },
    { event: 'exit', data: { exit_code: 3, signal: null, duration_ms: 12 } },
  ];
  vi.stubEnv('TFC_URL', url);
  vi.stubEnv('TFC_TOKEN', 'a-token-of-sixteen-chars');
  vi.stubEnv('TFC_DATA_DIR', '');
});

afterEach(() => {
  vi.unstubAllEnvs();
});

const tfc = (...args: string[]) => runCli(['--config', configPath, ...args]);

describe('tfc pool', () => {
  it('ls prints one table row per pool with its counts, and sends the token', async () => {
    const r = await tfc('pool', 'ls');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/pool.*profile.*ready.*booting.*allocated.*target/);
    expect(r.stdout).toMatch(/web\s*│?\s*default\s*│?\s*2\s*│?\s*0\s*│?\s*1\s*│?\s*2/);
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/v1/pools', auth: 'Bearer a-token-of-sixteen-chars' });
  });

  it('ls --json prints the API shape', async () => {
    const r = await tfc('pool', 'ls', '--json');
    expect(JSON.parse(r.stdout)).toEqual({ pools: [POOL] });
  });

  it('allocate prints only the VM id on stdout (for scripts) and the latency on stderr', async () => {
    const r = await tfc('pool', 'allocate', 'web', '--owner', 'alice', '--timeout-ms', '500');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${VM.id}\n`);
    expect(r.stderr).toContain(`allocated ${VM.id} from pool web in 2.5 ms`);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/v1/pools/web/allocate', body: { owner: 'alice', timeout_ms: 500 } });
  });

  it('allocate --json prints the allocation and nothing on stderr', async () => {
    const r = await tfc('pool', 'allocate', 'web', '--json');
    expect(JSON.parse(r.stdout)).toEqual({ vm: VM, allocation_ms: 2.5 });
    expect(r.stderr).toBe('');
    expect(seen[0].body).toEqual({});
  });

  it('a daemon error is printed with its code and message, exit 1', async () => {
    answer = (s, res) => {
      send(res, 503, { error: { code: 'POOL_EXHAUSTED', message: 'pool web has no ready VM; raise pools.web.max' } });
      return true;
    };
    const r = await tfc('pool', 'allocate', 'web');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('tfc: error POOL_EXHAUSTED: pool web has no ready VM; raise pools.web.max\n');
  });
});

describe('tfc vm (daemon)', () => {
  it('ls prints a row per VM with pool, state, allocation and driver/accel', async () => {
    const r = await tfc('vm', 'ls');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    const row = lines.find((l) => l.includes(VM.id));
    expect(row).toMatch(/web.*default.*running.*yes.*alice.*qemu\/tcg/);
    const other = lines.find((l) => l.includes('vm-ffffffffffff'));
    expect(other).toBeDefined();
    expect(other).not.toMatch(/yes|alice/);
  });

  it('ls --json prints the API shape', async () => {
    const r = await tfc('vm', 'ls', '--json');
    expect(JSON.parse(r.stdout).vms).toHaveLength(2);
  });

  it('get prints the VM, its network and its phase table', async () => {
    const r = await tfc('vm', 'get', VM.id);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${VM.id}  running  pool web  profile default  qemu/tcg  allocated to alice`);
    expect(r.stdout).toContain('network: host address 10.200.0.6, guest 172.16.0.2 (namespace tfc-abc)');
    expect(r.stdout).toMatch(/restore phase/);
    // >= 100 ms without decimals, below with one.
    expect(r.stdout).toMatch(/restore-state\s*│?\s*152/);
    expect(r.stdout).toMatch(/agent-ready\s*│?\s*3\.3|agent-ready\s*│?\s*3\.2/);
  });

  it('get of a VM without network or pool prints dashes, no network line', async () => {
    answer = (s, res) => {
      send(res, 200, { ...VM, pool: null, allocated: false, owner: null, network: null, created_by: 'boot' });
      return true;
    };
    const r = await tfc('vm', 'get', VM.id);
    expect(r.stdout).toContain('pool -');
    expect(r.stdout).not.toContain('network:');
    expect(r.stdout).not.toContain('allocated');
    expect(r.stdout).toMatch(/boot phase/);
  });

  it('get --json prints the VM as the API returns it', async () => {
    const r = await tfc('vm', 'get', VM.id, '--json');
    expect(JSON.parse(r.stdout)).toEqual(VM);
  });

  it('get of an unknown VM says so and exits 1', async () => {
    const r = await tfc('vm', 'get', 'vm-000000000000');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tfc: error NOT_FOUND: no route GET \/v1\/vms\/vm-000000000000/);
  });

  it("exec streams the command after -- and exits with the guest command's code", async () => {
    const r = await tfc('vm', 'exec', '--timeout-ms', '900', VM.id, '--', 'sh', '-c', 'exit 3');
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    expect(seen[0]).toMatchObject({ method: 'POST', url: `/v1/vms/${VM.id}/processes`, body: { cmd: ['sh', '-c', 'exit 3'] } });
    expect(seen[1]).toMatchObject({ method: 'GET', url: `/v1/vms/${VM.id}/processes/7/output?encoding=base64` });
  });

  it('exec falls back to the one-shot exec when the daemon has no processes API', async () => {
    processesApi = false;
    const r = await tfc('vm', 'exec', '--timeout-ms', '900', VM.id, '--', 'sh', '-c', 'exit 3');
    expect(r).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    expect(seen.find((x) => x.url.endsWith('/exec'))?.body).toMatchObject({ cmd: ['sh', '-c', 'exit 3'], timeout_ms: 900 });
  });

  it('exec kills a streamed command at --timeout-ms and exits 124; a signal death exits 128+N', async () => {
    holdUntilSignal = true;
    processEvents = [{ event: 'stdout', data: { data: Buffer.from('working\n').toString('base64') } }];
    const r = await tfc('vm', 'exec', '--timeout-ms', '300', VM.id, '--', 'sleep', '9');
    expect(r.code).toBe(124);
    expect(r.stdout).toBe('working\n');
    expect(r.stderr).toMatch(/timed out after 300 ms/);
    expect(seen.find((x) => x.url.endsWith('/signal'))?.body).toEqual({ signal: 'SIGKILL' });
    holdUntilSignal = false;
    processEvents = [{ event: 'exit', data: { exit_code: null, signal: 'SIGTERM', duration_ms: 1 } }];
    expect((await tfc('vm', 'exec', VM.id, 'sleep', '9')).code).toBe(143);
  });

  it('exec takes tfc options written after the id (before --) as tfc options, not as the guest command', async () => {
    const r = await tfc('vm', 'exec', VM.id, '--timeout-ms', '900', '--json', '--', 'sh', '-c', 'exit 3');
    expect(r.code).toBe(3);
    expect(seen[0].body).toMatchObject({ cmd: ['sh', '-c', 'exit 3'], timeout_ms: 900 });
    expect(JSON.parse(r.stdout)).toMatchObject({ exit_code: 3 });
  });

  it('exec keeps a -- that belongs to the guest command', async () => {
    await tfc('vm', 'exec', VM.id, 'ls', '--', '-x');
    expect(seen[0].body).toMatchObject({ cmd: ['ls', '--', '-x'] });
  });

  it('exec passes binary output to stdout byte for byte', async () => {
    execStdout = Buffer.from([0x00, 0xff, 0x80, 0x0a, 0xc3]);
    // Streamed in two chunks that cut the bytes anywhere: they still arrive unchanged.
    processEvents.splice(0, 1, ...[execStdout.subarray(0, 2), execStdout.subarray(2)].map((b) => ({ event: 'stdout', data: { data: b.toString('base64') } })));
    let r = await tfc('vm', 'exec', VM.id, 'cat', '/bin/true');
    expect(Buffer.compare(r.stdoutBytes, execStdout)).toBe(0);
    expect(r.stderr).toBe('err\n');
    processesApi = false;
    r = await tfc('vm', 'exec', VM.id, 'cat', '/bin/true');
    expect(Buffer.compare(r.stdoutBytes, execStdout)).toBe(0);
    expect(r.stderr).toBe('err\n');
  });

  it('exec --json --base64 prints the exact bytes as base64', async () => {
    execStdout = Buffer.from([0x00, 0xff]);
    const r = await tfc('vm', 'exec', '--json', '--base64', VM.id, 'x');
    expect(JSON.parse(r.stdout)).toMatchObject({ stdout: 'AP8=', output_encoding: 'base64' });
  });

  it('keepalive prints the new lease expiry, and sends the asked TTL', async () => {
    const r = await tfc('vm', 'keepalive', VM.id, '--ttl-ms', '60000');
    expect(r).toMatchObject({ code: 0, stdout: `${VM.id} lease until 2026-12-01T10:00:00.000Z\n` });
    expect(seen[0]).toMatchObject({ method: 'POST', url: `/v1/vms/${VM.id}/keepalive`, body: { ttl_ms: 60000 } });
  });

  it('exec --json that timed out exits 124; one killed without a code exits 137', async () => {
    answer = (s, res) => {
      send(res, 200, { exit_code: null, stdout: '', stderr: '', timed_out: true });
      return true;
    };
    expect((await tfc('vm', 'exec', '--json', VM.id, 'sleep', '9')).code).toBe(124);
    answer = (s, res) => {
      send(res, 200, { exit_code: null, stdout: '', stderr: '', timed_out: false });
      return true;
    };
    expect((await tfc('vm', 'exec', '--json', VM.id, 'sleep', '9')).code).toBe(137);
  });

  it('exec --json prints the whole result', async () => {
    const r = await tfc('vm', 'exec', '--json', VM.id, '--', 'true');
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout)).toMatchObject({ exit_code: 3, stdout: 'out\n', stderr: 'err\n', timed_out: false });
  });

  it('rm releases every id given, in order', async () => {
    const r = await tfc('vm', 'rm', VM.id, 'vm-ffffffffffff');
    expect(r.code).toBe(0);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([`DELETE /v1/vms/${VM.id}`, 'DELETE /v1/vms/vm-ffffffffffff']);
  });
});

describe('talking to the daemon', () => {
  it("an error code this CLI does not know keeps the daemon's code in the message", async () => {
    answer = (s, res) => {
      send(res, 409, { error: { code: 'SOMETHING_NEWER', message: 'a newer daemon said no' } });
      return true;
    };
    const r = await tfc('vm', 'ls');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('tfc: error INTERNAL: SOMETHING_NEWER: a newer daemon said no\n');
  });

  it('an error without the envelope is reported with its HTTP status', async () => {
    answer = (s, res) => {
      send(res, 500, {});
      return true;
    };
    const r = await tfc('vm', 'ls');
    expect(r.stderr).toBe('tfc: error INTERNAL: HTTP 500: HTTP 500\n');
  });

  it('something that is not the tfc daemon (not JSON) is DAEMON_UNAVAILABLE, asking whether TFC_URL is right', async () => {
    answer = (s, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>hello</html>');
      return true;
    };
    const r = await tfc('pool', 'ls');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tfc: error DAEMON_UNAVAILABLE: .* answered 200 with something that is not tfc JSON; is TFC_URL right\?/);
  });

  it('no daemon listening is DAEMON_UNAVAILABLE with the fix (`tfc serve`)', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    vi.stubEnv('TFC_URL', `http://127.0.0.1:${port}/`);
    const r = await tfc('vm', 'ls');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no tfc daemon answers at http://127.0.0.1:${port}; start one with \`tfc serve\``);
  });

  it('without TFC_URL the CLI finds the daemon at api.listen (0.0.0.0 means this host) with the token file of data_dir', async () => {
    const port = (server.address() as AddressInfo).port;
    const sub = mkdtempSync(join(tmpdir(), 'tfc-cli-listen-'));
    try {
      const cfg = join(sub, 'tfc.toml');
      writeFileSync(cfg, `data_dir = "${join(sub, 'data')}"\n[api]\nlisten = "0.0.0.0:${port}"\n`);
      const { mkdirSync } = await import('node:fs');
      mkdirSync(join(sub, 'data'), { recursive: true });
      writeFileSync(join(sub, 'data', 'api-token'), 'token-from-the-file-0123\n');
      vi.stubEnv('TFC_URL', '');
      vi.stubEnv('TFC_TOKEN', '');
      const r = await runCli(['--config', cfg, 'pool', 'ls', '--json']);
      expect(r.code).toBe(0);
      expect(seen[0].auth).toBe('Bearer token-from-the-file-0123');
    } finally {
      rmSync(sub, { recursive: true, force: true });
    }
  });
});
