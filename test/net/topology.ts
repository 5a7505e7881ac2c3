import { randomBytes } from 'node:crypto';
import { runCommand, spawnSupervised, type SupervisedChild } from '../../src/process/index.js';

/**
 * A self-contained network for the host-side networking tests. Every
 * address below exists only inside namespaces created here, and none of
 * them has a physical interface, so no packet can leave the machine even if
 * a rule under test is wrong:
 *
 *   [upstream ns U]  eth0 198.18.0.2/24, 10.99.0.1/32 ("a private network")
 *        | veth              HTTP :8080 answers "upstream <client address>"
 *   [host ns H]      up0 198.18.0.1/24; default route via U (U routes nowhere)
 *        |                   listeners :7000 (exposed) and :7001 (not exposed)
 *        | tfcv* veths (made by the NetworkManager with hostNetns = H)
 *   [VM ns  P-vm-*]  veth0 = hostAddress, tap0 = 172.16.0.1/30
 *        | veth standing in for the TAP (tapStandIn)
 *   [guest ns P-g-N] eth0 172.16.0.2/30, default via 172.16.0.1; HTTP :9000 "guest-N"
 */

export const UPSTREAM_IP = '198.18.0.2';
export const HOST_UPLINK_IP = '198.18.0.1';
export const PRIVATE_IP = '10.99.0.1';
export const EXPOSED_PORT = 7000;
export const CLOSED_PORT = 7001;
export const UPSTREAM_PORT = 8080;
export const GUEST_PORT = 9000;

/** Answers every request with "<label> <client address>" on each port given; prints "ready" once all listen. */
const SERVER_SCRIPT = `
const http = require('node:http');
const [label, ...ports] = process.argv.slice(1);
let pending = ports.length;
for (const port of ports) {
  http.createServer((req, res) => res.end(label + ' ' + req.socket.remoteAddress.replace(/^::ffff:/, '')))
    .listen(Number(port), '0.0.0.0', () => { if (--pending === 0) console.log('ready'); });
}
`;

export async function ip(args: string[]): Promise<string> {
  return (await runCommand('ip', args, { timeoutMs: 10_000 })).stdout.toString();
}

export async function nsRun(ns: string, file: string, args: string[], allowFailure = false) {
  return runCommand('ip', ['netns', 'exec', ns, file, ...args], { timeoutMs: 10_000, allowFailure });
}

/** Starts the answering server inside `ns`; resolves once it listens (bounded by 15 s). */
export async function startServer(ns: string, label: string, ports: number[]): Promise<SupervisedChild> {
  const child = await spawnSupervised('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER_SCRIPT, label, ...ports.map(String)]);
  const ready = await new Promise<boolean>((resolve) => {
    let out = '';
    const timer = setTimeout(() => resolve(false), 15_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    void child.wait().then(() => resolve(false));
  });
  if (!ready) {
    await child.terminate(1000);
    throw new Error(`test server ${label} in ${ns} did not start`);
  }
  return child;
}

export interface HttpResult {
  ok: boolean;
  body: string;
}

/**
 * One HTTP GET from inside `ns` (busybox wget), bounded by `timeoutMs`.
 * A blocked destination shows up as ok=false (timeout or refusal).
 */
export async function httpGet(ns: string, host: string, port: number, timeoutMs = 4000): Promise<HttpResult> {
  // No `wget -T`: Debian's busybox 1.35 wget crashes with it; the process timeout bounds the request instead.
  try {
    const r = await runCommand('ip', ['netns', 'exec', ns, 'busybox', 'wget', '-q', '-O', '-', `http://${host}:${port}/`], {
      timeoutMs,
      allowFailure: true,
    });
    return { ok: r.code === 0, body: r.stdout.toString().trim() };
  } catch {
    return { ok: false, body: '' }; // killed at timeoutMs
  }
}

export class Topology {
  readonly prefix: string;
  readonly hostNs: string;
  readonly upstreamNs: string;
  /** Prefix the NetworkManager under test uses for VM namespaces. */
  readonly vmNetnsPrefix: string;
  private readonly servers: SupervisedChild[] = [];
  private readonly guests = new Map<string, { ns: string; server?: SupervisedChild }>();

  constructor() {
    this.prefix = `tfct${randomBytes(3).toString('hex')}-`;
    this.hostNs = `${this.prefix}host`;
    this.upstreamNs = `${this.prefix}up`;
    this.vmNetnsPrefix = `${this.prefix}vm-`;
  }

  async create(): Promise<void> {
    const [H, U] = [this.hostNs, this.upstreamNs];
    await ip(['netns', 'add', H]);
    await ip(['netns', 'add', U]);
    await ip(['-n', H, 'link', 'set', 'lo', 'up']);
    await ip(['-n', U, 'link', 'set', 'lo', 'up']);
    await ip(['-n', H, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', U]);
    await ip(['-n', H, 'addr', 'add', `${HOST_UPLINK_IP}/24`, 'dev', 'up0']);
    await ip(['-n', H, 'link', 'set', 'up0', 'up']);
    // U is a dead end (no other interface, no forwarding), so this default route reaches nothing real.
    await ip(['-n', H, 'route', 'add', 'default', 'via', UPSTREAM_IP]);
    await ip(['-n', U, 'addr', 'add', `${UPSTREAM_IP}/24`, 'dev', 'eth0']);
    await ip(['-n', U, 'addr', 'add', `${PRIVATE_IP}/32`, 'dev', 'eth0']);
    await ip(['-n', U, 'link', 'set', 'eth0', 'up']);
    // Lets the upstream answer un-masqueraded VM traffic (tests with masquerade off).
    await ip(['-n', U, 'route', 'add', '10.200.0.0/16', 'via', HOST_UPLINK_IP]);
    this.servers.push(await startServer(U, 'upstream', [UPSTREAM_PORT]));
    this.servers.push(await startServer(H, 'host', [EXPOSED_PORT, CLOSED_PORT]));
  }

  /** Name of the namespace playing VM `vmId`'s guest; created on first use. */
  guestNs(vmId: string): string {
    const g = this.guests.get(vmId);
    if (!g) throw new Error(`no guest namespace prepared for ${vmId}; call prepareGuest first`);
    return g.ns;
  }

  /** Creates the guest namespace before NetworkManager.create (the stand-in TAP's peer moves into it). */
  async prepareGuest(vmId: string): Promise<string> {
    const ns = `${this.prefix}g-${this.guests.size}`;
    await ip(['netns', 'add', ns]);
    this.guests.set(vmId, { ns });
    return ns;
  }

  /** Configures the guest side as a real guest's init would, and starts its service on GUEST_PORT. */
  async startGuest(vmId: string, net: { guestIp: string; guestPrefix: number; gatewayIp: string; guestMac: string }, label: string): Promise<void> {
    const g = this.guests.get(vmId)!;
    await ip(['-n', g.ns, 'link', 'set', 'lo', 'up']);
    await ip(['-n', g.ns, 'link', 'set', 'eth0', 'address', net.guestMac]);
    await ip(['-n', g.ns, 'addr', 'add', `${net.guestIp}/${net.guestPrefix}`, 'dev', 'eth0']);
    await ip(['-n', g.ns, 'link', 'set', 'eth0', 'up']);
    await ip(['-n', g.ns, 'route', 'add', 'default', 'via', net.gatewayIp]);
    g.server = await startServer(g.ns, label, [GUEST_PORT]);
  }

  /** Stops guest services and deletes guest namespaces (after the VM networks are destroyed). */
  async removeGuests(): Promise<void> {
    for (const [, g] of this.guests) {
      await g.server?.terminate(1000);
      await runCommand('ip', ['netns', 'del', g.ns], { allowFailure: true, timeoutMs: 10_000 });
    }
    this.guests.clear();
  }

  async destroy(): Promise<void> {
    await this.removeGuests();
    for (const s of this.servers.splice(0)) await s.terminate(1000);
    for (const ns of [this.hostNs, this.upstreamNs]) await runCommand('ip', ['netns', 'del', ns], { allowFailure: true, timeoutMs: 10_000 });
  }

  /** Our namespaces still present (global `ip netns list`), optionally only those starting with `startsWith`. */
  async namespaces(startsWith = this.prefix): Promise<string[]> {
    const out = await ip(['netns', 'list']);
    return out
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0])
      .filter((n) => n && n.startsWith(startsWith));
  }

  /** Interface names in the host namespace. */
  async hostLinks(): Promise<string[]> {
    const links = JSON.parse(await ip(['-n', this.hostNs, '-j', 'link', 'show'])) as Array<{ ifname: string }>;
    return links.map((l) => l.ifname).sort();
  }

  async hostTables(): Promise<string> {
    return (await nsRun(this.hostNs, 'nft', ['list', 'tables'])).stdout.toString().trim();
  }
}
