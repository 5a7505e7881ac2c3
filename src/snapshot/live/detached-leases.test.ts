import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_DETACHED_LEASE_MS, DetachedLeases, MAX_DETACHED_LEASE_MS } from './detached-leases.js';

describe('DetachedLeases (forks and VMs resumed from disk)', () => {
  afterEach(() => vi.useRealTimers());

  it('expires a lease once after its TTL, and a keepalive moves the expiry', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const expired: string[] = [];
    const leases = new DetachedLeases((id) => expired.push(id));
    expect(leases.start('vm-a', 1000)).toBe(1_001_000);
    leases.start('vm-b');
    expect(leases.expiresAt('vm-b')).toBe(1_000_000 + DEFAULT_DETACHED_LEASE_MS);
    vi.advanceTimersByTime(900);
    expect(leases.keepalive('vm-a')).toBe(1_001_900);
    vi.advanceTimersByTime(900);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(200);
    expect(expired).toEqual(['vm-a']);
    expect(leases.has('vm-a')).toBe(false);
    vi.advanceTimersByTime(DEFAULT_DETACHED_LEASE_MS);
    expect(expired).toEqual(['vm-a', 'vm-b']);
    expect(leases.size).toBe(0);
  });

  it('does not expire an ended lease, and refuses a keepalive without a lease', () => {
    vi.useFakeTimers();
    const expired: string[] = [];
    const leases = new DetachedLeases((id) => expired.push(id));
    leases.start('vm-a', 10);
    leases.end('vm-a');
    leases.end('vm-never');
    vi.advanceTimersByTime(100);
    expect(expired).toEqual([]);
    expect(() => leases.keepalive('vm-a')).toThrow(expect.objectContaining({ code: 'INVALID_STATE', message: expect.stringMatching(/no lease/) }));
    leases.start('vm-c', 10);
    leases.endAll();
    vi.advanceTimersByTime(100);
    expect(expired).toEqual([]);
  });

  it('refuses a TTL outside 1 ms .. 24 h, naming the bound', () => {
    const leases = new DetachedLeases(() => undefined);
    for (const bad of [0, -1, 1.5, MAX_DETACHED_LEASE_MS + 1]) {
      expect(() => leases.start('vm-a', bad)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/ttl_ms must be an integer from 1 to 86400000/) }),
      );
    }
    expect(leases.size).toBe(0);
  });
});
