/**
 * The client against a small in-process HTTP server on a real Unix socket:
 * every operation of the spec has a method that sends it (right method,
 * path, spec-valid body), answers are decoded, and failures come back as
 * the typed errors. The full behaviour against Firecracker's rules is in
 * fake-firecracker.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TfcError } from '../../errors/index.js';
import { FIRECRACKER_CLIENT_METHODS, FirecrackerApiClient, waitForSocket, type FirecrackerClientMethod } from './api-client.js';
import { FirecrackerApiError, FirecrackerApiTimeoutError } from './api-errors.js';
import { loadFirecrackerSpec } from './spec.js';

interface Seen {
  method: string;
  url: string;
  body: unknown;
  socket: unknown;
}
type Reply = { status: number; body?: string; delayMs?: number };

let dir = '';
let n = 0;
const servers = new Set<http.Server>();
const clients = new Set<FirecrackerApiClient>();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fc-client-'));
});
afterEach(async () => {
  for (const c of clients) c.close();
  clients.clear();
  await Promise.all(
    [...servers].map(
      (s) =>
        new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
    ),
  );
  servers.clear();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function socketPath(): string {
  return join(dir, `api-${++n}.sock`);
}

/** A server that records requests and answers with `reply(seen)`. */
async function serve(path: string, reply: (seen: Seen) => Reply): Promise<Seen[]> {
  const seen: Seen[] = [];
  const server = http.createServer(async (req, res) => {
    let raw = '';
    for await (const c of req) raw += String(c);
    const s = { method: req.method ?? '', url: req.url ?? '', body: raw ? JSON.parse(raw) : undefined, socket: req.socket };
    seen.push(s);
    const r = reply(s);
    setTimeout(() => {
      res.writeHead(r.status, r.body ? { 'Content-Type': 'application/json' } : {});
      res.end(r.body);
    }, r.delayMs ?? 0);
  });
  servers.add(server);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return seen;
}

function client(path: string, timeoutMs?: number): FirecrackerApiClient {
  const c = new FirecrackerApiClient({ socketPath: path, timeoutMs });
  clients.add(c);
  return c;
}

const bucket = { size: 1000, refill_time: 100 };
/** Valid arguments for every request method of the client. */
const SAMPLES: Record<Exclude<FirecrackerClientMethod, 'call'>, unknown[]> = {
  describeInstance: [],
  getVersion: [],
  getVmConfig: [],
  createSyncAction: [{ action_type: 'InstanceStart' }],
  instanceStart: [],
  flushMetrics: [],
  sendCtrlAltDel: [],
  getMachineConfig: [],
  putMachineConfig: [{ vcpu_count: 2, mem_size_mib: 256 }],
  patchMachineConfig: [{ mem_size_mib: 512 }],
  putBootSource: [{ kernel_image_path: '/k', boot_args: 'console=ttyS0' }],
  putCpuConfig: [{ kvm_capabilities: ['!56'] }],
  putDrive: ['rootfs', { drive_id: 'rootfs', path_on_host: '/r', is_root_device: true, is_read_only: false }],
  patchDrive: ['rootfs', { drive_id: 'rootfs', rate_limiter: { bandwidth: bucket } }],
  putNetworkInterface: ['eth0', { iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '06:00:ac:10:00:02' }],
  patchNetworkInterface: ['eth0', { iface_id: 'eth0', rx_rate_limiter: { ops: bucket } }],
  putPmem: ['pm0', { id: 'pm0', path_on_host: '/p' }],
  patchPmem: ['pm0', { id: 'pm0', rate_limiter: { ops: bucket } }],
  putVsock: [{ guest_cid: 3, uds_path: '/v.sock' }],
  putEntropy: [{ rate_limiter: { bandwidth: bucket } }],
  putSerial: [{ serial_out_path: '/serial.log' }],
  putLogger: [{ log_path: '/fc.log', level: 'Info' }],
  putMetrics: [{ metrics_path: '/fc.metrics' }],
  putMmdsConfig: [{ network_interfaces: ['eth0'], version: 'V2' }],
  putMmds: [{ latest: { 'meta-data': {} } }],
  patchMmds: [{ latest: null }],
  getMmds: [],
  getBalloon: [],
  putBalloon: [{ amount_mib: 64, deflate_on_oom: true }],
  patchBalloon: [{ amount_mib: 32 }],
  getBalloonStatistics: [],
  patchBalloonStatistics: [{ stats_polling_interval_s: 5 }],
  startBalloonHinting: [{ acknowledge_on_stop: true }],
  getBalloonHintingStatus: [],
  stopBalloonHinting: [],
  getMemoryHotplug: [],
  putMemoryHotplug: [{ total_size_mib: 1024 }],
  patchMemoryHotplug: [{ requested_size_mib: 512 }],
  patchVm: [{ state: 'Paused' }],
  pauseVm: [],
  resumeVm: [],
  createSnapshot: [{ snapshot_path: '/s', mem_file_path: '/m', snapshot_type: 'Full' }],
  loadSnapshot: [{ snapshot_path: '/s', mem_backend: { backend_type: 'File', backend_path: '/m' } }],
};

describe('FirecrackerApiClient covers the spec', () => {
  it('has a method for every operation of the spec, and each sends that operation with a valid body', async () => {
    const spec = loadFirecrackerSpec();
    const path = socketPath();
    const seen = await serve(path, (s) => (s.method === 'GET' ? { status: 200, body: '{}' } : { status: 204 }));
    const c = client(path);
    const methods = FIRECRACKER_CLIENT_METHODS as Record<string, readonly string[]>;
    for (const op of spec.operations) {
      const names = methods[op.operationId];
      expect(names, `no client method for ${op.operationId} (${op.method} ${op.path})`).toBeDefined();
      for (const name of names!) {
        const fn = (c as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name];
        expect(typeof fn, `FirecrackerApiClient.${name}`).toBe('function');
        const args = SAMPLES[name as keyof typeof SAMPLES];
        expect(args, `no sample arguments for ${name}`).toBeDefined();
        await fn!.apply(c, args!);
        const req = seen.at(-1)!;
        const match = spec.findOperation(req.method, req.url);
        expect(match?.operation.operationId, `${name} sent ${req.method} ${req.url}`).toBe(op.operationId);
        expect(spec.validateRequest(req.method, req.url, req.body), `${name}'s request`).toEqual([]);
      }
    }
    // Every method in the table was exercised, and nothing else exists unmapped.
    const mapped = new Set(Object.values(methods).flat());
    expect([...mapped].sort()).toEqual(Object.keys(SAMPLES).sort());
  });

  it('reuses one kept-alive connection and encodes path parameters', async () => {
    const path = socketPath();
    const seen = await serve(path, () => ({ status: 204 }));
    const c = client(path);
    await c.putDrive('a b', { drive_id: 'a b', is_root_device: false, path_on_host: '/x' });
    await c.putDrive('c', { drive_id: 'c', is_root_device: false, path_on_host: '/y' });
    expect(seen.map((s) => s.url)).toEqual(['/drives/a%20b', '/drives/c']);
    expect(seen[0]!.socket).toBe(seen[1]!.socket);
  });
});

describe('FirecrackerApiClient answers and errors', () => {
  it('returns parsed bodies for 200 and undefined for 204', async () => {
    const path = socketPath();
    await serve(path, (s) => (s.url === '/version' ? { status: 200, body: '{"firecracker_version":"1.12.0"}' } : { status: 204 }));
    const c = client(path);
    expect(await c.getVersion()).toEqual({ firecracker_version: '1.12.0' });
    expect(await c.instanceStart()).toBeUndefined();
  });

  it('throws FirecrackerApiError carrying the fault message, status, method and path', async () => {
    const path = socketPath();
    await serve(path, () => ({ status: 400, body: '{"fault_message":"The requested operation is not supported after starting the microVM."}' }));
    const err = await client(path)
      .putBootSource({ kernel_image_path: '/k' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirecrackerApiError);
    expect(err).toBeInstanceOf(TfcError);
    const e = err as FirecrackerApiError;
    expect(e.code).toBe('FIRECRACKER_API_ERROR');
    expect(e.status).toBe(502);
    expect(e.faultMessage).toBe('The requested operation is not supported after starting the microVM.');
    expect(e.details).toMatchObject({ method: 'PUT', path: '/boot-source', httpStatus: 400, socketPath: path });
    expect(e.message).toContain('PUT /boot-source (400): The requested operation is not supported');
  });

  it('keeps a non-JSON error body as the fault message', async () => {
    const path = socketPath();
    await serve(path, () => ({ status: 500, body: 'internal kaboom' }));
    await expect(client(path).getVmConfig()).rejects.toMatchObject({ faultMessage: 'internal kaboom', httpStatus: 500 });
  });

  it('throws FirecrackerApiTimeoutError when the answer is late', async () => {
    const path = socketPath();
    await serve(path, () => ({ status: 204, delayMs: 500 }));
    const c = client(path, 5_000);
    const err = await c.instanceStart({ timeoutMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirecrackerApiTimeoutError);
    expect(err).toMatchObject({ code: 'FIRECRACKER_API_TIMEOUT', status: 504, details: { timeoutMs: 50, path: '/actions' } });
    // The client recovers on a fresh connection.
    await expect(c.instanceStart({ timeoutMs: 2_000 })).resolves.toBeUndefined();
  });

  it('rejects with the abort reason when the signal fires', async () => {
    const path = socketPath();
    await serve(path, () => ({ status: 204, delayMs: 500 }));
    const ac = new AbortController();
    const pending = client(path).pauseVm({ signal: ac.signal });
    ac.abort(new Error('VM deleted'));
    await expect(pending).rejects.toThrow('VM deleted');
    await expect(client(path).pauseVm({ signal: AbortSignal.abort(new Error('already')) })).rejects.toThrow('already');
  });

  it('throws FirecrackerApiError without an HTTP status when nothing listens', async () => {
    const err = await client(join(dir, 'nobody.sock'))
      .describeInstance()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirecrackerApiError);
    expect(err).toMatchObject({ httpStatus: null, faultMessage: null });
    expect((err as Error).message).toContain('ENOENT');
  });
});

describe('waitForSocket', () => {
  it('polls until the socket appears and GET / answers', async () => {
    const path = socketPath();
    setTimeout(() => void serve(path, () => ({ status: 200, body: '{"id":"x","state":"Not started","vmm_version":"1.12.0","app_name":"Firecracker"}' })), 100);
    const info = await waitForSocket(path, { timeoutMs: 5_000 });
    expect(info.state).toBe('Not started');
  });

  it('throws FirecrackerApiTimeoutError when nothing answers in time', async () => {
    const started = Date.now();
    const err = await waitForSocket(join(dir, 'never.sock'), { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirecrackerApiTimeoutError);
    expect((err as Error).message).toContain('did not answer GET / within 100 ms');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('stops when aborted', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('vmm exited')), 50);
    await expect(waitForSocket(join(dir, 'never2.sock'), { timeoutMs: 5_000, signal: ac.signal })).rejects.toThrow('vmm exited');
  });
});
