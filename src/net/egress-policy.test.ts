import { describe, expect, it } from 'vitest';
import { DEFAULT_EGRESS_DENY, parseEgressRule, resolveEgressPolicy } from './egress-policy.js';

describe('egress policy', () => {
  it('parses CIDR, bare addresses, ports and port ranges', () => {
    expect(parseEgressRule('203.0.113.0/24')).toEqual({ cidr: '203.0.113.0/24' });
    expect(parseEgressRule('1.1.1.1:53')).toEqual({ cidr: '1.1.1.1/32', ports: { from: 53, to: 53 } });
    expect(parseEgressRule('0.0.0.0/0:8000-8100')).toEqual({ cidr: '0.0.0.0/0', ports: { from: 8000, to: 8100 } });
  });

  it('refuses malformed rules, saying what is expected', () => {
    for (const bad of ['10.0.0.1/8', '10.0.0.0/8:0', '10.0.0.0/8:70000', '1.2.3.4:9-1', 'fd00::/8', 'example.com', '1.2.3.4:']) {
      expect(() => parseEgressRule(bad, 'egress_allow rule')).toThrow(/egress_allow rule ".*" .*expected CIDR\[:PORT\[-PORT\]\]/);
    }
  });

  it('denies private and link-local ranges by default and allows nothing extra', () => {
    const p = resolveEgressPolicy();
    expect(p.allow).toEqual([]);
    expect(p.deny.map((r) => r.cidr)).toEqual([...DEFAULT_EGRESS_DENY]);
    expect(p.bandwidthMbit).toBeNull();
    expect(DEFAULT_EGRESS_DENY).not.toContain('198.18.0.0/15');
  });

  it('keeps an explicit empty deny list and validates bandwidth', () => {
    expect(resolveEgressPolicy({ egressDeny: [] }).deny).toEqual([]);
    expect(resolveEgressPolicy({ bandwidthMbit: 2.5 }).bandwidthMbit).toBe(2.5);
    for (const bad of [0, -1, Number.NaN, 1e9]) expect(() => resolveEgressPolicy({ bandwidthMbit: bad })).toThrow(/bandwidth_mbit/);
  });
});
