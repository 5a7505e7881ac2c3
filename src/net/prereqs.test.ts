import { describe, expect, it } from 'vitest';
import { assertNetworkAvailable, checkNetworkPrereqs, effectiveCapabilities, privilegeCheck } from './prereqs.js';

const NET_ADMIN = 1n << 12n;
const SYS_ADMIN = 1n << 21n;

describe('network prerequisites', () => {
  it('reads effective capabilities from /proc status text', () => {
    expect(effectiveCapabilities('Name:\tnode\nCapEff:\t000001fffeffffff\n')).toBe(0x1fffeffffffn);
    expect(effectiveCapabilities('no caps here')).toBe(0n);
  });

  it('accepts root, or both capabilities, and says how to fix otherwise', () => {
    expect(privilegeCheck(0, NET_ADMIN | SYS_ADMIN).status).toBe('ok');
    expect(privilegeCheck(1000, NET_ADMIN | SYS_ADMIN).status).toBe('ok');
    const noSys = privilegeCheck(1000, NET_ADMIN);
    expect(noSys).toMatchObject({ status: 'fail', detail: expect.stringContaining('CAP_SYS_ADMIN') });
    expect(privilegeCheck(1000, 0n)).toMatchObject({ status: 'fail', detail: expect.stringContaining('CAP_NET_ADMIN'), fix: expect.stringContaining('root') });
  });

  it('reports every check with a fix unless ok, and never throws', () => {
    const checks = checkNetworkPrereqs();
    expect(checks.map((c) => c.name)).toEqual(['network privileges', '/dev/net/tun', 'tool ip', 'tool nft', 'tool sysctl', 'tool tc', 'ip forwarding']);
    for (const c of checks) if (c.status !== 'ok') expect(c.fix).toBeTruthy();
  });

  it('fails with NETWORK_UNAVAILABLE listing each failed check and its fix', () => {
    expect(() =>
      assertNetworkAvailable([
        { name: 'tool nft', status: 'fail', detail: 'not found', fix: 'apt-get install nftables' },
        { name: 'x', status: 'warn', detail: 'meh', fix: 'y' },
      ]),
    ).toThrow(
      expect.objectContaining({
        code: 'NETWORK_UNAVAILABLE',
        status: 500,
        message: expect.stringMatching(/tool nft: not found \(fix: apt-get install nftables\)$/),
      }),
    );
    expect(() => assertNetworkAvailable([{ name: 'a', status: 'ok', detail: '' }])).not.toThrow();
  });
});
