import { describe, expect, it } from 'vitest';
import { assertIfName, assertNetnsPrefix, shortId, vmObjectNames } from './names.js';

describe('object names', () => {
  it('derives stable names within IFNAMSIZ from any VM id', () => {
    const a = vmObjectNames('vm-0123456789ab');
    expect(a).toEqual(vmObjectNames('vm-0123456789ab'));
    expect(a.netns).toMatch(/^tfc-[0-9a-f]{10}$/);
    expect(a.hostVeth).toMatch(/^tfcv[0-9a-f]{10}$/);
    expect(a.hostVeth.length).toBeLessThanOrEqual(15);
    expect(a.chain).toBe(`vm_${shortId('vm-0123456789ab')}`);
    const long = vmObjectNames('x'.repeat(500), 'tfct-');
    expect(long.hostVeth.length).toBe(14);
    expect(long.netns.startsWith('tfct-')).toBe(true);
    expect(vmObjectNames('vm-a').hostVeth).not.toBe(vmObjectNames('vm-b').hostVeth);
  });

  it('validates interface names and namespace prefixes', () => {
    expect(assertIfName('eth0')).toBe('eth0');
    for (const bad of ['', 'sixteen-chars-xx', 'a b', 'a/b', 'a:1', '..']) expect(() => assertIfName(bad)).toThrow(/not a valid interface name/);
    expect(assertNetnsPrefix('tfc-')).toBe('tfc-');
    for (const bad of ['', '-x', '../x', 'a/b']) expect(() => assertNetnsPrefix(bad)).toThrow(/netns prefix/);
  });
});
