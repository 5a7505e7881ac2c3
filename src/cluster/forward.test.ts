import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeLostError, NodeUnknownError } from '../errors/index.js';
import { ClusterGateway, FORWARDED_BY_HEADER, PLACED_HEADER, type MembershipLike, type RoutePlan } from './forward.js';
import { seededRandom } from './placement.js';
import { lostReason, type NodeInfo, type NodeView } from './view.js';

const TOKEN = 'cluster-token-0123456789';
const capacity = { vcpus: 2, memory_mib: 1024, max_vms: 4 };
const noVms = { vm_list: [], vm_list_truncated: false };

function info(name: string, url: string): NodeInfo {
  return { name, url, version: '0', started_at: '2026-01-01T00:00:00.000Z', capacity };
}

/** A membership of node `a` that knows `peers` (name -> view) and one departed node `gone`. */
function fakeMembership(self: NodeInfo, peers: NodeView[]): MembershipLike {
  const all = () => [{ ...self, pools: {}, vms: 0, ...noVms }, ...peers];
  return {
    name: self.name,
    nodes: () => all(),
    info: () => self,
    healthy: () => true,
    requireHealthy: () => undefined,
    liveNodes: async () => all(),
    resolve: (name: string) => {
      const n = all().find((x) => x.name === name);
      if (n) return n;
      if (name === 'gone') throw new NodeLostError('node gone left', { details: { node: 'gone', left_at: 'T' } });
      throw new NodeUnknownError(`no node ${name}`);
    },
    view: {
      departures: () => [{ node: info('gone', 'http://x'), at: 'T', vms: 3, list: [], truncated: true }],
      has: (n: string) => all().some((x) => x.name === n),
    },
  } as MembershipLike;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** A front server that hands every request to the gateway's plan (as the API's hook does). */
async function front(gw: ClusterGateway): Promise<string> {
  return listen((req, res) => {
    let plan: RoutePlan;
    try {
      plan = gw.plan(req.method ?? 'GET', req.url ?? '/', req.headers);
    } catch (err) {
      res.writeHead(599).end((err as { code: string }).code);
      return;
    }
    if (plan.kind === 'local') res.writeHead(200).end('local');
    else gw.forward(req, res, plan);
  });
}

function call(url: string, method: string, body?: string): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('ClusterGateway', () => {
  it('plans: own and bare ids local, other nodes forwarded, departed NODE_LOST, unknown and loops NODE_UNKNOWN', () => {
    const gw = new ClusterGateway(fakeMembership(info('a', 'http://a'), [{ ...info('b', 'http://b'), pools: {}, vms: 0, ...noVms }]), {
      token: TOKEN,
      connectTimeoutMs: 500,
    });
    expect(gw.plan('GET', '/v1/vms/vm-0123456789ab', {}).kind).toBe('local');
    expect(gw.plan('GET', '/v1/vms/a~vm-0123456789ab/files', {}).kind).toBe('local');
    expect(gw.plan('POST', '/v1/vms/b~vm-0123456789ab/exec', {})).toMatchObject({ kind: 'forward', node: { name: 'b' } });
    expect(() => gw.plan('GET', '/v1/vms/gone~vm-0123456789ab', {})).toThrow(NodeLostError);
    expect(() => gw.plan('GET', '/v1/vms/zz~vm-0123456789ab', {})).toThrow(NodeUnknownError);
    expect(() => gw.plan('GET', '/v1/vms/b~vm-0123456789ab', { [FORWARDED_BY_HEADER]: 'b' })).toThrow(NodeUnknownError);
    expect(gw.rewriteUrl('/v1/vms/a~vm-0123456789ab/exec?x=1')).toBe('/v1/vms/vm-0123456789ab/exec?x=1');
    expect(gw.rewriteUrl('/v1/vms/b~vm-0123456789ab/exec')).toBe('/v1/vms/b~vm-0123456789ab/exec');
    expect(gw.nameIds('{"id":"vm-0123456789ab"}', '/v1/snapshots')).toBe('{"id":"vm-0123456789ab"}');
    expect(gw.nameIds('{"id":"vm-0123456789ab","x":"b~vm-0123456789ab","s":"vm-0123456789abc"}', '/v1/vms?x')).toBe(
      '{"id":"a~vm-0123456789ab","x":"b~vm-0123456789ab","s":"vm-0123456789abc"}',
    );
  });

  it('accepts the cluster token only with X-Tfc-Forwarded-By naming a known node', () => {
    const gw = new ClusterGateway(fakeMembership(info('a', 'http://a'), [{ ...info('b', 'http://b'), pools: {}, vms: 0, ...noVms }]), {
      token: TOKEN,
      connectTimeoutMs: 500,
    });
    expect(gw.isNodeCall({ authorization: `Bearer ${TOKEN}`, [FORWARDED_BY_HEADER]: 'b' })).toBe(true);
    expect(gw.isNodeCall({ authorization: `Bearer ${TOKEN}` })).toBe(false);
    expect(gw.isNodeCall({ authorization: `Bearer ${TOKEN}`, [FORWARDED_BY_HEADER]: 'stranger' })).toBe(false);
    expect(gw.isNodeCall({ authorization: 'Bearer wrong-token-0123456789', [FORWARDED_BY_HEADER]: 'b' })).toBe(false);
  });

  it('forwards a call with its body and streams the answer back, with the cluster token and the forwarding node', async () => {
    let seen: IncomingMessage['headers'] = {};
    const b = await listen((req, res) => {
      seen = req.headers;
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`data: ${req.url} ${body}\n\n`);
        setTimeout(() => res.end('data: end\n\n'), 50);
      });
    });
    const gw = new ClusterGateway(fakeMembership(info('a', 'http://unused'), [{ ...info('b', b), pools: {}, vms: 0, ...noVms }]), {
      token: TOKEN,
      connectTimeoutMs: 500,
    });
    const r = await call(`${await front(gw)}/v1/vms/b~vm-0123456789ab/exec?x=1`, 'POST', 'hello');
    gw.close();
    expect(r.status).toBe(200);
    expect(r.body).toBe('data: /v1/vms/b~vm-0123456789ab/exec?x=1 hello\n\ndata: end\n\n');
    expect(r.headers['x-tfc-served-by']).toBe('b');
    expect(seen.authorization).toBe(`Bearer ${TOKEN}`);
    expect(seen[FORWARDED_BY_HEADER]).toBe('a');
  });

  it('answers NODE_UNREACHABLE when the node refuses the connection', async () => {
    const dead = await listen(() => undefined);
    await new Promise((r) => servers.pop()!.close(r));
    const gw = new ClusterGateway(fakeMembership(info('a', 'http://unused'), [{ ...info('b', dead), pools: {}, vms: 0, ...noVms }]), {
      token: TOKEN,
      connectTimeoutMs: 500,
    });
    const r = await call(`${await front(gw)}/v1/vms/b~vm-0123456789ab`, 'GET');
    gw.close();
    expect(r.status).toBe(502);
    expect(JSON.parse(r.body).error.code).toBe('NODE_UNREACHABLE');
  });

  it('places an allocation on the node with ready VMs, and once elsewhere when that node is exhausted', async () => {
    const hits: string[] = [];
    const node = (name: string, exhausted: boolean) =>
      listen((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          hits.push(`${name} placed=${String(req.headers[PLACED_HEADER])} ${body}`);
          if (exhausted) res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"code":"POOL_EXHAUSTED","message":"x"}}');
          else res.writeHead(201, { 'content-type': 'application/json' }).end(`{"vm":{"id":"${name}~vm-0123456789ab"}}`);
        });
      });
    const [b, c] = [await node('b', true), await node('c', false)];
    const pools = (ready: number) => ({ default: { ready, allocated: 0, target: 2 } });
    const gw = new ClusterGateway(
      fakeMembership(info('a', 'http://unused'), [
        { ...info('b', b), pools: pools(5), vms: 0, ...noVms },
        { ...info('c', c), pools: pools(1), vms: 0, ...noVms },
      ]),
      { token: TOKEN, connectTimeoutMs: 500, random: seededRandom(1) },
    );
    const url = await front(gw);
    const r = await call(`${url}/v1/pools/default/allocate`, 'POST', '{"owner":"t"}');
    gw.close();
    expect(r.status).toBe(201);
    expect(JSON.parse(r.body).vm.id).toBe('c~vm-0123456789ab');
    // A node chosen for its ready VMs may not wait in line (they may have gone since it published): the client retries on POOL_EXHAUSTED.
    expect(hits).toEqual(['b placed=b {"owner":"t","timeout_ms":1000}', 'c placed=c {"owner":"t","timeout_ms":1000}']);
    expect(gw.stats).toMatchObject({ retries: 1 });
  });

  it('waits cluster-wide while no node has a ready VM or room, and places as soon as one has', async () => {
    const c = await listen((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(201, { 'content-type': 'application/json' }).end('{"vm":{"id":"c~vm-0123456789ab"}}'));
    });
    const full = { ...info('c', c), capacity: { ...capacity, max_vms: 1 }, vms: 1, ...noVms, pools: { default: { ready: 0, allocated: 1, target: 1 } } };
    const peers: NodeView[] = [full];
    const gw = new ClusterGateway(fakeMembership(info('a', 'http://unused'), peers), { token: TOKEN, connectTimeoutMs: 500 });
    const url = await front(gw);
    const started = Date.now();
    setTimeout(() => (peers[0] = { ...full, pools: { default: { ready: 1, allocated: 1, target: 1 } } }), 600);
    const r = await call(`${url}/v1/pools/default/allocate`, 'POST', '{}');
    expect(r.status).toBe(201);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    // Nothing anywhere within the client's timeout_ms: POOL_EXHAUSTED.
    peers[0] = full;
    const r2 = await call(`${url}/v1/pools/default/allocate`, 'POST', '{"timeout_ms":300}');
    gw.close();
    expect(r2.status).toBe(503);
    expect(JSON.parse(r2.body).error.code).toBe('POOL_EXHAUSTED');
  });

  it('describes each node with its VMs (ids naming the node), and the VMs of departed nodes as lost with the reason', async () => {
    const b: NodeView = {
      ...info('b', 'http://b'),
      pools: {},
      vms: 1,
      vm_list: [{ id: 'vm-00000000000b', pool: 'default', state: 'allocated' }],
      vm_list_truncated: false,
    };
    const m = fakeMembership(info('a', 'http://a'), [b]);
    const at = '2026-12-01T01:00:00.000Z';
    const membership = {
      ...m,
      view: {
        ...m.view,
        departures: () => [
          { node: info('c', 'http://c'), at, vms: 2, list: [{ id: 'vm-00000000000c', pool: null, state: 'ready' as const }], truncated: true },
        ],
      },
    };
    const gw = new ClusterGateway(membership, { token: TOKEN, connectTimeoutMs: 500 });
    const d = await gw.describe(false);
    gw.close();
    expect(d.nodes.find((n) => n.name === 'b')).toMatchObject({ vms: 1, vm_list: [{ id: 'b~vm-00000000000b', pool: 'default', state: 'allocated' }] });
    const reason = lostReason('c', at);
    expect(reason).toContain(`node c's etcd lease expired (or was revoked) at ${at}`);
    expect(d.departed).toEqual([
      {
        name: 'c',
        url: 'http://c',
        left_at: at,
        vms: 2,
        state: 'lost',
        reason,
        vm_list: [{ id: 'c~vm-00000000000c', pool: null, state: 'lost', reason }],
        vm_list_truncated: true,
      },
    ]);
  });
});
