/**
 * Scaling simulation (docs/scaling.md): N simulated nodes, each a real
 * Membership (lease + keepalive + watch of the whole prefix) and a real
 * PoolPublisher whose pool counts change at random, against a real etcd
 * cluster (the three-member test cluster, or `--endpoints`). Prints what
 * the model predicts next to what was measured: writes per second (raft
 * proposals etcd committed, and the publishers' transactions), keepalives
 * per second, watch events delivered per watcher per second, put latency
 * p50/p99, etcd's database size and CPU.
 *
 *   node dist/cluster/simulate.js --nodes 100 --seconds 30 [--pools 2]
 *        [--change-ms 200] [--publish-interval-ms 1000] [--ttl 10]
 *        [--routers N] [--clients N] [--seed 1] [--endpoints http://127.0.0.1:2379,...] [--json]
 *
 * Test and measurement support; not used by the daemon.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from './etcd-client.js';
import { Membership } from './membership.js';
import { seededRandom } from './placement.js';
import { PoolPublisher } from './publisher.js';
import { EtcdTestCluster, etcdSkipReason } from './testing/etcd-cluster.js';

export interface SimulationOptions {
  nodes: number;
  seconds: number;
  pools: number;
  /** Mean time between changes of one pool's counts. */
  changeMs: number;
  publishIntervalMs: number;
  ttlS: number;
  seed: number;
  /**
   * Nodes that watch everyone's pool counts (the ones that place VMs); the
   * others watch membership only. Default: all of them.
   */
  routers?: number;
  /**
   * etcd clients (gRPC connections) shared round-robin by the simulated
   * nodes; default one per node, as real nodes have. Fewer clients take the
   * simulator's own per-connection cost out of large runs.
   */
  clients?: number;
  /** An existing etcd cluster; default: start the three-member test cluster. */
  endpoints?: string[];
  /** Progress lines (default none). */
  progress?: (line: string) => void;
}

export interface SimulationResult {
  date: string;
  machine: string;
  /** The host's 1-minute load average at the end (other jobs share these machines). */
  loadAverage: number;
  options: Omit<SimulationOptions, 'progress' | 'endpoints'>;
  measuredSeconds: number;
  /** Pool count changes the simulated pools made, per second (all nodes). */
  changesPerSec: number;
  /** Publisher transactions that reached etcd, per second (all nodes). */
  publishTxnPerSec: number;
  /** Keys those transactions wrote, per second. */
  keysPerSec: number;
  /** Raft proposals etcd committed per second (every write, from etcd's own metrics). */
  proposalsPerSec: number | null;
  /** Keepalives answered per second (all nodes; served by the leader, not through raft). */
  keepalivesPerSec: number;
  /** Nodes that watched pool counts (the rest watched membership only). */
  routers: number;
  /** Watch events delivered per watcher (node) per second, per router, and in total. */
  watchEventsPerWatcherPerSec: number;
  watchEventsPerRouterPerSec: number;
  watchEventsPerSec: number;
  putLatencyMs: { p50: number; p99: number; count: number };
  /** etcd's database file size after the run. */
  dbSizeBytes: number | null;
  /** CPU etcd's members used, in cores (sum over members), and this process. */
  etcdCpuCores: number | null;
  simulatorCpuCores: number;
  /** What the model predicts for these options. */
  model: { writesPerNodePerSec: number; keepalivesPerNodePerSec: number; watchEventsPerRouterPerSec: number };
  /** Failed publishes and registrations after the first (rejoins), which should both be 0 on a healthy run. */
  publishFailures: number;
  rejoins: number;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sum of one Prometheus counter over a member's /metrics, or null when unreadable. */
async function metric(url: string, name: string): Promise<number | null> {
  try {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    let total: number | null = null;
    for (const line of text.split('\n')) if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total = (total ?? 0) + Number(line.split(' ').pop());
    return total;
  } catch {
    return null;
  }
}

/** CPU seconds used by a process so far (utime + stime from /proc, USER_HZ 100). */
function cpuSeconds(pid: number): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** The model of docs/scaling.md for these options. */
export function model(o: Pick<SimulationOptions, 'nodes' | 'pools' | 'changeMs' | 'publishIntervalMs' | 'ttlS'>) {
  // A node writes when any of its pools changed since its last write, at most once per interval.
  const changesPerNode = (o.pools * 1000) / o.changeMs;
  const writesPerNodePerSec = Math.min(changesPerNode, 1000 / o.publishIntervalMs);
  const keepalivesPerNodePerSec = 3 / o.ttlS;
  // Every node watches the whole prefix: it receives every key every node
  // writes. A write carries each pool that changed during the interval
  // (probability 1 - e^(-interval/changeMs) for changes at random times);
  // the node's VM-count key is left out (it changes less often).
  const windowMs = 1000 / writesPerNodePerSec;
  const keysPerWrite = o.pools * (1 - Math.exp(-windowMs / o.changeMs));
  return { writesPerNodePerSec, keepalivesPerNodePerSec, watchEventsPerRouterPerSec: o.nodes * writesPerNodePerSec * keysPerWrite };
}

export async function runSimulation(o: SimulationOptions): Promise<SimulationResult> {
  const say = o.progress ?? (() => undefined);
  const random = seededRandom(o.seed);
  let cluster: EtcdTestCluster | null = null;
  const clients: Etcd3[] = [];
  const members: Membership[] = [];
  const publishers: PoolPublisher[] = [];
  const timers: NodeJS.Timeout[] = [];
  let stopping = false;
  try {
    if (!o.endpoints) {
      say('starting a three-member etcd test cluster');
      cluster = await EtcdTestCluster.start();
    }
    const endpoints = o.endpoints ?? cluster!.endpoints;
    const prefix = `/tfc-sim-${process.pid}-${Date.now()}/`;
    const pools = Array.from({ length: o.pools }, (_, i) => (i === 0 ? 'default' : `pool-${i}`));
    let changes = 0;
    const routers = Math.min(o.nodes, o.routers ?? o.nodes);
    const clientCount = Math.max(1, Math.min(o.nodes, o.clients ?? o.nodes));
    say(`registering ${o.nodes} nodes`);
    for (let i = 0; i < o.nodes; i++) {
      const config = {
        nodeName: `sim-${i}`,
        advertiseUrl: `http://127.0.0.1:${20000 + i}`,
        leaseTtlS: o.ttlS,
        keyPrefix: prefix,
        callTimeoutMs: 5000,
        endpoints,
        publishIntervalMs: o.publishIntervalMs,
      };
      if (clients.length < clientCount) clients.push(createEtcdClient(config));
      const client = clients[i % clientCount];
      const m = new Membership(client, config, { version: 'sim', capacity: { vcpus: 2, memory_mib: 4096, max_vms: 16 } }, { watchPools: i < routers });
      members.push(m);
      const pub = new PoolPublisher(client, m, config);
      publishers.push(pub);
      await m.start();
      for (const pool of pools) pub.update(pool, { ready: 2, allocated: 0, target: 4 });
      pub.setVms(2 * o.pools);
    }
    // Pool counts change at random, each pool every changeMs on average (a tick per node).
    const tickMs = o.changeMs / o.pools;
    publishers.forEach((pub) => {
      const counts = pools.map(() => ({ ready: 2, allocated: 0, target: 4 }));
      const tick = () => {
        const p = Math.floor(random() * pools.length);
        const c = counts[p];
        if (random() < 0.5 && c.ready > 0) {
          c.ready--;
          c.allocated++;
        } else if (c.allocated > 0) {
          c.allocated--;
          c.ready++;
        } else c.ready++;
        pub.update(pools[p], c);
        pub.setVms(counts.reduce((s, x) => s + x.ready + x.allocated, 0));
        changes++;
      };
      // Spread the nodes' ticks over the period instead of firing together.
      timers.push(
        setTimeout(() => {
          if (!stopping) timers.push(setInterval(tick, tickMs));
        }, random() * tickMs),
      );
    });
    const warmupMs = Math.max(2000, o.publishIntervalMs * 2);
    say(`warming up ${warmupMs} ms`);
    await sleep(warmupMs);
    for (const m of members) if (m.nodes().length < o.nodes) say(`note: ${m.name} sees ${m.nodes().length} of ${o.nodes} nodes`);

    const snap = () => ({
      t: performance.now(),
      changes,
      txns: publishers.reduce((s, p) => s + p.stats.writes, 0),
      keys: publishers.reduce((s, p) => s + p.stats.keysWritten, 0),
      keepalives: members.reduce((s, m) => s + m.keepalives, 0),
      events: members.reduce((s, m) => s + m.watchEvents, 0),
      routerEvents: members.slice(0, routers).reduce((s, m) => s + m.watchEvents, 0),
      cpu: process.cpuUsage(),
      etcdCpu: cluster ? cluster.members.map((m) => (m.child ? cpuSeconds(m.child.pid) : null)) : [],
    });
    const proposals = async () => {
      const values = await Promise.all(endpoints.map((e) => metric(e, 'etcd_server_proposals_committed_total')));
      const known = values.filter((v): v is number => v !== null);
      return known.length ? Math.max(...known) : null;
    };
    const p0 = await proposals();
    // Latencies from here on only.
    for (const p of publishers) p.stats.latenciesMs.length = 0;
    const a = snap();
    say(`measuring ${o.seconds} s`);
    await sleep(o.seconds * 1000);
    const b = snap();
    const p1 = await proposals();
    const secs = (b.t - a.t) / 1000;
    const latencies = publishers.flatMap((p) => p.stats.latenciesMs);
    const status = await clients[0].maintenance.status().catch(() => null);
    const etcdCpu =
      a.etcdCpu.every((v) => v !== null) && b.etcdCpu.every((v) => v !== null) && a.etcdCpu.length > 0
        ? b.etcdCpu.reduce((s, v, i) => s! + v! - a.etcdCpu[i]!, 0)! / secs
        : null;
    const simCpu = (b.cpu.user - a.cpu.user + b.cpu.system - a.cpu.system) / 1e6 / secs;
    const { progress: _progress, endpoints: _endpoints, ...options } = o;
    return {
      date: new Date().toISOString(),
      machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, etcd ${cluster ? '3.4 (Debian, 3 members on loopback)' : endpoints.join(',')}`,
      loadAverage: loadavg()[0],
      options,
      measuredSeconds: secs,
      changesPerSec: (b.changes - a.changes) / secs,
      publishTxnPerSec: (b.txns - a.txns) / secs,
      keysPerSec: (b.keys - a.keys) / secs,
      proposalsPerSec: p0 !== null && p1 !== null ? (p1 - p0) / secs : null,
      keepalivesPerSec: (b.keepalives - a.keepalives) / secs,
      routers,
      watchEventsPerWatcherPerSec: (b.events - a.events) / secs / o.nodes,
      watchEventsPerRouterPerSec: (b.routerEvents - a.routerEvents) / secs / routers,
      watchEventsPerSec: (b.events - a.events) / secs,
      putLatencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), count: latencies.length },
      dbSizeBytes: status ? Number(status.dbSize) : null,
      etcdCpuCores: etcdCpu,
      simulatorCpuCores: simCpu,
      model: model(o),
      publishFailures: publishers.reduce((s, p) => s + p.stats.failures, 0),
      rejoins: members.reduce((s, m) => s + Math.max(0, m.registrations - 1), 0),
    };
  } finally {
    stopping = true;
    for (const t of timers) clearTimeout(t);
    await Promise.all(publishers.map((p) => p.stop()));
    await Promise.all(members.map((m) => m.stop()));
    for (const c of clients) c.close();
    await cluster?.destroy();
  }
}

function render(r: SimulationResult): string {
  const f = (v: number | null, d = 1) => (v === null || Number.isNaN(v) ? 'n/a' : v.toFixed(d));
  const o = r.options;
  return [
    `cluster simulation ${r.date}`,
    `machine: ${r.machine}, load average ${r.loadAverage.toFixed(1)}`,
    `nodes ${o.nodes}, pools per node ${o.pools}, a pool changes every ${o.changeMs} ms, publish interval ${o.publishIntervalMs} ms, lease TTL ${o.ttlS} s, measured ${f(r.measuredSeconds)} s`,
    `pool changes/s (all nodes)          ${f(r.changesPerSec)}`,
    `publish txns/s (all nodes)          ${f(r.publishTxnPerSec)}   model ${f(r.model.writesPerNodePerSec * o.nodes)}`,
    `keys written/s                      ${f(r.keysPerSec)}`,
    `raft proposals/s (etcd metrics)     ${f(r.proposalsPerSec)}`,
    `keepalives/s (all nodes)            ${f(r.keepalivesPerSec)}   model ${f(r.model.keepalivesPerNodePerSec * o.nodes)}`,
    `watch events/s per router           ${f(r.watchEventsPerRouterPerSec)}   model ${f(r.model.watchEventsPerRouterPerSec)}   (${r.routers} of ${o.nodes} nodes watch pool counts)`,
    `watch events/s per watcher (mean)   ${f(r.watchEventsPerWatcherPerSec)}`,
    `watch events/s delivered (total)    ${f(r.watchEventsPerSec)}`,
    `publish txn latency p50 / p99 (ms)  ${f(r.putLatencyMs.p50)} / ${f(r.putLatencyMs.p99)}   (${r.putLatencyMs.count} txns)`,
    `etcd db size                        ${r.dbSizeBytes === null ? 'n/a' : `${(r.dbSizeBytes / 2 ** 20).toFixed(2)} MiB`}`,
    `etcd CPU (3 members, cores)         ${f(r.etcdCpuCores, 2)}`,
    `simulator CPU (cores)               ${f(r.simulatorCpuCores, 2)}`,
    `publish failures ${r.publishFailures}, rejoins ${r.rejoins}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '10' },
      seconds: { type: 'string', default: '30' },
      pools: { type: 'string', default: '2' },
      'change-ms': { type: 'string', default: '200' },
      'publish-interval-ms': { type: 'string', default: '1000' },
      ttl: { type: 'string', default: '10' },
      seed: { type: 'string', default: '1' },
      routers: { type: 'string' },
      clients: { type: 'string' },
      endpoints: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const int = (name: keyof typeof values, min: number, max: number): number => {
    const v = Number(values[name]);
    if (!Number.isInteger(v) || v < min || v > max) throw new Error(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(values[name])})`);
    return v;
  };
  const options: SimulationOptions = {
    nodes: int('nodes', 1, 5000),
    seconds: int('seconds', 1, 3600),
    pools: int('pools', 1, 64),
    changeMs: int('change-ms', 1, 3_600_000),
    publishIntervalMs: int('publish-interval-ms', 100, 60_000),
    ttlS: int('ttl', 2, 300),
    seed: int('seed', 0, 2 ** 31 - 1),
    progress: (line) => process.stderr.write(`${line}\n`),
  };
  if (values.routers !== undefined) options.routers = int('routers', 0, 5000);
  if (values.clients !== undefined) options.clients = int('clients', 1, 5000);
  if (values.endpoints) options.endpoints = values.endpoints.split(',');
  else {
    const skip = etcdSkipReason();
    if (skip) throw new Error(skip);
  }
  const result = await runSimulation(options);
  process.stdout.write(`${values.json ? JSON.stringify(result, null, 2) : render(result)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`simulate: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
