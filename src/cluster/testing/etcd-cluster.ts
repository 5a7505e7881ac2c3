/**
 * Test support (not shipped behaviour): a real three-member etcd cluster
 * from Debian's `etcd-server` (/usr/bin/etcd) on loopback ports, with its
 * data dirs in one `mktemp` directory. Members can be stopped and started
 * again (same data dir, same ports); `destroy()` kills every member and
 * removes the directory. Used by the cluster tests and the scaling
 * simulation. Must not be imported by product code.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSupervised, type SupervisedChild } from '../../process/index.js';

export const ETCD_BINARY = process.env.TFC_ETCD_BIN ?? '/usr/bin/etcd';

/** Why etcd tests cannot run here, or null when they can. */
export function etcdSkipReason(): string | null {
  if (!existsSync(ETCD_BINARY)) {
    return `${ETCD_BINARY} not found: install Debian's etcd-server and etcd-client (apt-get install etcd-server etcd-client), or set TFC_ETCD_BIN`;
  }
  return null;
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  child: SupervisedChild | null;
  /** The last 8 KiB of the member's stderr (etcd logs there), for failure messages. */
  log: string;
}

export interface EtcdClusterOptions {
  /** Members (default 3). */
  size?: number;
  /** How long to wait for the cluster to become healthy (default 60 s: the hosts are loaded). */
  readyTimeoutMs?: number;
  /** etcd --snapshot-count (default 1000, small, so snapshots happen in tests). */
  snapshotCount?: number;
  /**
   * Also accept clients on every address (`0.0.0.0`), for clients in other
   * network namespaces that reach this host over a bridge (default false:
   * loopback only). `clientUrl` stays the loopback URL.
   */
  listenAll?: boolean;
}

const MAX_LOG = 8192;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** etcd's own environment variables would conflict with the flags: pass none of them. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')));
}

export class EtcdTestCluster {
  readonly members: EtcdMember[];
  private destroyed = false;

  private constructor(
    readonly dir: string,
    members: EtcdMember[],
    private readonly options: Required<EtcdClusterOptions>,
  ) {
    this.members = members;
  }

  /** The client URLs of all members (what `cluster.endpoints` lists). */
  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** The client URLs as reached at `host` (with `listenAll`, e.g. a bridge address seen from a network namespace). */
  endpointsAt(host: string): string[] {
    return this.members.map((m) => m.clientUrl.replace('127.0.0.1', host));
  }

  /**
   * Starts the members and waits until every one reports healthy. Throws
   * (after removing everything it made) when etcd is missing or does not
   * become healthy in time; check `etcdSkipReason()` first to skip instead.
   */
  static async start(options: EtcdClusterOptions = {}): Promise<EtcdTestCluster> {
    const opts: Required<EtcdClusterOptions> = {
      size: options.size ?? 3,
      readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
      snapshotCount: options.snapshotCount ?? 1000,
      listenAll: options.listenAll ?? false,
    };
    const dir = mkdtempSync(join(tmpdir(), 'tfc-etcd-'));
    const members: EtcdMember[] = [];
    for (let i = 0; i < opts.size; i++) {
      const [client, peer] = [await freePort(), await freePort()];
      members.push({
        name: `etcd-${i}`,
        clientUrl: `http://127.0.0.1:${client}`,
        peerUrl: `http://127.0.0.1:${peer}`,
        dataDir: join(dir, `etcd-${i}`),
        child: null,
        log: '',
      });
    }
    const cluster = new EtcdTestCluster(dir, members, opts);
    try {
      await Promise.all(members.map((_, i) => cluster.spawn(i)));
      await cluster.waitHealthy(opts.readyTimeoutMs);
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  private async spawn(i: number): Promise<void> {
    const m = this.members[i];
    const initialCluster = this.members.map((x) => `${x.name}=${x.peerUrl}`).join(',');
    const args = [
      '--name',
      m.name,
      '--data-dir',
      m.dataDir,
      '--listen-client-urls',
      this.options.listenAll ? m.clientUrl.replace('127.0.0.1', '0.0.0.0') : m.clientUrl,
      '--advertise-client-urls',
      m.clientUrl,
      '--listen-peer-urls',
      m.peerUrl,
      '--initial-advertise-peer-urls',
      m.peerUrl,
      '--initial-cluster',
      initialCluster,
      '--initial-cluster-state',
      'new',
      '--initial-cluster-token',
      `tfc-test-${process.pid}`,
      '--snapshot-count',
      String(this.options.snapshotCount),
      '--logger',
      'zap',
      '--log-level',
      'warn',
    ];
    const child = await spawnSupervised(ETCD_BINARY, args, { env: cleanEnv(), stdout: 'ignore', stderr: 'pipe' });
    m.log = '';
    // Always drained, so a chatty member never blocks on a full pipe.
    child.stderr?.on('data', (chunk: Buffer) => {
      m.log = (m.log + chunk.toString()).slice(-MAX_LOG);
    });
    m.child = child;
  }

  /** True when the member answers `GET /health` with health "true" (it has a leader). */
  async memberHealthy(i: number): Promise<boolean> {
    try {
      const res = await fetch(`${this.members[i].clientUrl}/health`, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { health?: string };
      return body.health === 'true';
    } catch {
      return false;
    }
  }

  /** Waits until every running member is healthy. Throws with the members' logs after `timeoutMs`. */
  async waitHealthy(timeoutMs = this.options.readyTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.members.map((m, i) => (m.child && !m.child.exited ? i : -1)).filter((i) => i >= 0);
      const states = await Promise.all(running.map((i) => this.memberHealthy(i)));
      if (running.length > 0 && states.every(Boolean)) return;
      if (Date.now() > deadline) {
        const logs = this.members.map((m) => `${m.name} (${m.child?.exited ? 'exited' : 'running'}):\n${m.log.slice(-2000)}`).join('\n');
        throw new Error(`etcd test cluster not healthy after ${timeoutMs} ms\n${logs}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Stops member `i` (SIGTERM, SIGKILL after 5 s); its data dir stays for `startMember`. */
  async stopMember(i: number): Promise<void> {
    const m = this.members[i];
    const child = m.child;
    m.child = null;
    if (child) await child.terminate(5000);
  }

  /** Starts member `i` again from its data dir and waits until the cluster is healthy. */
  async startMember(i: number): Promise<void> {
    if (this.destroyed) throw new Error('etcd test cluster already destroyed');
    if (this.members[i].child) return;
    await this.spawn(i);
    await this.waitHealthy();
  }

  /** Kills every member and removes the data dirs. Never throws; safe to call twice. */
  async destroy(): Promise<void> {
    this.destroyed = true;
    await Promise.all(this.members.map((_, i) => this.stopMember(i).catch(() => undefined)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
