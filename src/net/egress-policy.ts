import { InvalidArgumentError } from '../errors/index.js';
import { formatCidr, parseCidr } from './ipam.js';

/**
 * Per-VM egress policy (profile keys `network.egress_allow`,
 * `network.egress_deny`, `network.bandwidth_mbit`), parsed and validated
 * before anything is created. Rules are "CIDR[:PORT[-PORT]]"; a bare
 * address means /32; a port applies to both TCP and UDP.
 *
 * Evaluation order (first match wins): allow rules, then deny rules, then
 * accept. A strict allow-list is therefore `egressAllow: [...]` plus
 * `egressDeny: ['0.0.0.0/0']`.
 */

export interface EgressPolicy {
  /** Destinations always allowed, checked first. Default []. */
  egressAllow?: string[];
  /** Destinations denied after the allow rules. Default DEFAULT_EGRESS_DENY (private and link-local ranges). */
  egressDeny?: string[];
  /** Rate limit in Mbit/s applied in both directions (tc tbf). Default: none. */
  bandwidthMbit?: number;
}

export interface EgressRule {
  /** Normalised CIDR, e.g. "10.0.0.0/8". */
  cidr: string;
  /** Inclusive destination port range; absent = every port and protocol. */
  ports?: { from: number; to: number };
}

export interface ResolvedEgressPolicy {
  allow: EgressRule[];
  deny: EgressRule[];
  bandwidthMbit: number | null;
}

/**
 * RFC 1918 private ranges, link-local (169.254/16, which includes cloud
 * metadata services) and carrier-grade NAT (100.64/10). 198.18.0.0/15
 * (benchmarking) is deliberately not listed: it is never routed on the
 * internet and the integration tests use it as their "public" upstream.
 */
export const DEFAULT_EGRESS_DENY: readonly string[] = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10'];

const MAX_BANDWIDTH_MBIT = 100_000;

/** Parses one "CIDR[:PORT[-PORT]]" rule; throws INVALID_ARGUMENT naming `key` and the rule. */
export function parseEgressRule(text: string, key = 'egress rule'): EgressRule {
  const bad = (why: string) => new InvalidArgumentError(`${key} "${text}" ${why}; expected CIDR[:PORT[-PORT]] such as "203.0.113.0/24" or "0.0.0.0/0:443"`);
  const [addr, portText, ...rest] = text.trim().split(':');
  if (rest.length > 0) throw bad('has more than one ":" (IPv6 is not supported: VMs have IPv4 only)');
  const cidr = parseCidr(addr);
  if (!cidr) throw bad('is not an IPv4 CIDR with zero host bits');
  if (portText === undefined) return { cidr: formatCidr(cidr) };
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(portText);
  const from = m ? Number(m[1]) : NaN;
  const to = m ? Number(m[2] ?? m[1]) : NaN;
  if (!(from >= 1 && to <= 65535 && from <= to)) throw bad('has an invalid port (1-65535, or a range LOW-HIGH)');
  return { cidr: formatCidr(cidr), ports: { from, to } };
}

/** Validates and normalises a policy (defaults applied). Throws INVALID_ARGUMENT; creates nothing. */
export function resolveEgressPolicy(policy: EgressPolicy = {}): ResolvedEgressPolicy {
  const bw = policy.bandwidthMbit;
  if (bw !== undefined && !(Number.isFinite(bw) && bw > 0 && bw <= MAX_BANDWIDTH_MBIT)) {
    throw new InvalidArgumentError(`bandwidth_mbit ${bw} must be a number above 0 and at most ${MAX_BANDWIDTH_MBIT}`);
  }
  return {
    allow: (policy.egressAllow ?? []).map((r) => parseEgressRule(r, 'egress_allow rule')),
    deny: (policy.egressDeny ?? DEFAULT_EGRESS_DENY).map((r) => parseEgressRule(r, 'egress_deny rule')),
    bandwidthMbit: bw ?? null,
  };
}
