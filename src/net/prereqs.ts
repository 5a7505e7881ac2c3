import { accessSync, constants, readFileSync } from 'node:fs';
import { findExecutable } from '../process/index.js';
import { NetworkUnavailableError } from './errors.js';

/**
 * Host prerequisites of VM networking, as `tfc doctor` checks and as the
 * hard precondition the network manager asserts before creating anything.
 * Reads only (capabilities, /dev/net/tun, PATH, /proc/sys); changes nothing.
 */

export type NetworkCheckStatus = 'ok' | 'warn' | 'fail';

export interface NetworkCheck {
  name: string;
  status: NetworkCheckStatus;
  detail: string;
  /** How to fix it; present unless status is ok. */
  fix?: string;
}

const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21; // `ip netns add` bind-mounts the namespace under /run/netns

/** Effective capability bits of this process from /proc/self/status (0n when unreadable). */
export function effectiveCapabilities(statusText?: string): bigint {
  try {
    const text = statusText ?? readFileSync('/proc/self/status', 'utf8');
    const m = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(text);
    return m ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    return 0n;
  }
}

function hasCap(caps: bigint, bit: number): boolean {
  return (caps & (1n << BigInt(bit))) !== 0n;
}

/** The privilege check alone (pure given the capability bits), shared by doctor and the manager. */
export function privilegeCheck(uid: number | undefined, caps: bigint): NetworkCheck {
  const name = 'network privileges';
  if (uid === 0 && hasCap(caps, CAP_NET_ADMIN)) return { name, status: 'ok', detail: 'root with CAP_NET_ADMIN' };
  if (hasCap(caps, CAP_NET_ADMIN) && hasCap(caps, CAP_SYS_ADMIN)) return { name, status: 'ok', detail: `uid ${uid} with CAP_NET_ADMIN and CAP_SYS_ADMIN` };
  return {
    name,
    status: 'fail',
    detail: `uid ${uid ?? 'unknown'} lacks ${hasCap(caps, CAP_NET_ADMIN) ? 'CAP_SYS_ADMIN (needed by `ip netns add`)' : 'CAP_NET_ADMIN'}`,
    fix: 'run the daemon as root (or grant CAP_NET_ADMIN and CAP_SYS_ADMIN), or use profiles without networking',
  };
}

const TOOLS: ReadonlyArray<{ tool: string; pkg: string; why: string; required: boolean }> = [
  { tool: 'ip', pkg: 'iproute2', why: 'namespaces, veth pairs, TAPs, routes', required: true },
  { tool: 'nft', pkg: 'nftables', why: 'isolation, egress policy and NAT', required: true },
  { tool: 'sysctl', pkg: 'procps', why: 'IP forwarding inside namespaces', required: true },
  { tool: 'tc', pkg: 'iproute2', why: 'per-VM bandwidth limits', required: false },
];

/**
 * Every networking check for `tfc doctor`: privileges, /dev/net/tun, the
 * `ip`/`nft`/`sysctl`/`tc` programs, and IPv4 forwarding in the current
 * namespace. Never throws.
 */
export function checkNetworkPrereqs(): NetworkCheck[] {
  const checks: NetworkCheck[] = [privilegeCheck(process.getuid?.(), effectiveCapabilities())];
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
    checks.push({ name: '/dev/net/tun', status: 'ok', detail: 'present and accessible' });
  } catch {
    checks.push({ name: '/dev/net/tun', status: 'fail', detail: 'missing or not accessible (VM TAP devices need it)', fix: 'modprobe tun, and run as root' });
  }
  for (const t of TOOLS) {
    const path = findExecutable(t.tool);
    checks.push(
      path
        ? { name: `tool ${t.tool}`, status: 'ok', detail: path }
        : { name: `tool ${t.tool}`, status: t.required ? 'fail' : 'warn', detail: `not found (needed for ${t.why})`, fix: `apt-get install ${t.pkg}` },
    );
  }
  let forwarding: string;
  try {
    forwarding = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
  } catch {
    forwarding = 'unreadable';
  }
  checks.push(
    forwarding === '1'
      ? { name: 'ip forwarding', status: 'ok', detail: 'net.ipv4.ip_forward = 1' }
      : {
          name: 'ip forwarding',
          status: 'warn',
          detail: `net.ipv4.ip_forward = ${forwarding}; the daemon turns it on when it sets up networking`,
          fix: 'to keep it across reboots: add net.ipv4.ip_forward = 1 to /etc/sysctl.d/99-tfc.conf',
        },
  );
  return checks;
}

/**
 * Throws NETWORK_UNAVAILABLE listing every failed check and its fix when
 * the host cannot do VM networking. Cheap enough to call once per manager.
 */
export function assertNetworkAvailable(checks: NetworkCheck[] = checkNetworkPrereqs()): void {
  const failed = checks.filter((c) => c.status === 'fail');
  if (failed.length === 0) return;
  throw new NetworkUnavailableError(`VM networking is unavailable on this host: ${failed.map((c) => `${c.name}: ${c.detail} (fix: ${c.fix})`).join('; ')}`, {
    details: { failed: failed.map((c) => c.name) },
  });
}
