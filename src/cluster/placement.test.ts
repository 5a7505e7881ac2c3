import { describe, expect, it } from 'vitest';
import { formatVmId, parseVmId, placeVm, seededRandom, CLUSTER_VM_ID_PATTERN } from './placement.js';
import type { NodeView } from './view.js';

function node(name: string, pools: Record<string, number>, vms = 0, maxVms = 10): NodeView {
  return {
    name,
    url: `http://${name}:8080`,
    version: 'test',
    started_at: '2026-12-01T00:00:00.000Z',
    capacity: { vcpus: 2, memory_mib: 4096, max_vms: maxVms },
    pools: Object.fromEntries(Object.entries(pools).map(([p, ready]) => [p, { ready, allocated: 0, target: 4 }])),
    vms,
    vm_list: [],
    vm_list_truncated: false,
  };
}

/** A random source that returns the given values in turn. */
const sequence = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length];
};

describe('cluster VM ids', () => {
  it('formats and parses NODE~vm-… ids, and accepts bare local ids', () => {
    const id = formatVmId('node-1', 'vm-0123456789ab');
    expect(id).toBe('node-1~vm-0123456789ab');
    expect(parseVmId(id)).toEqual({ node: 'node-1', localId: 'vm-0123456789ab' });
    expect(parseVmId('vm-0123456789ab')).toEqual({ node: null, localId: 'vm-0123456789ab' });
    // The id needs no escaping in a URL path.
    expect(encodeURIComponent(id)).toBe(id);
  });

  it('rejects malformed ids and names, naming the expected form', () => {
    for (const bad of [
      'node~vm-0123',
      'Node~vm-0123456789ab',
      '-a~vm-0123456789ab',
      'a~b~vm-0123456789ab',
      '~vm-0123456789ab',
      'vm-0123456789AB',
      `${'a'.repeat(33)}~vm-0123456789ab`,
    ]) {
      expect(() => parseVmId(bad), bad).toThrow(/expected "NODE~vm-"/);
      expect(CLUSTER_VM_ID_PATTERN.test(bad), bad).toBe(false);
    }
    expect(() => formatVmId('a_b', 'vm-0123456789ab')).toThrow(/invalid node name/);
    expect(() => formatVmId('a', 'a~vm-0123456789ab')).toThrow(/invalid local VM id/);
  });

  it('round-trips any valid node name and local id', () => {
    const random = seededRandom(7);
    const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-';
    for (let n = 0; n < 500; n++) {
      const len = 1 + Math.floor(random() * 32);
      let name = '';
      for (let i = 0; i < len; i++) name += alphabet[Math.floor(random() * (i === 0 || i === len - 1 ? 36 : 37))];
      const local = `vm-${Math.floor(random() * 2 ** 48)
        .toString(16)
        .padStart(12, '0')}`;
      expect(parseVmId(formatVmId(name, local))).toEqual({ node: name, localId: local });
    }
  });
});

describe('placement: power of two choices', () => {
  it('takes the candidate with more ready VMs of the two drawn', () => {
    const nodes = [node('a', { default: 1 }), node('b', { default: 5 }), node('c', { default: 3 })];
    // Draws index 0 (a) then, among the others, index 1 (c): c has more than a.
    expect(placeVm('default', nodes, sequence(0.1, 0.9))).toEqual({ node: 'c', reason: 'ready', score: 3 });
    // a and b: b.
    expect(placeVm('default', nodes, sequence(0.1, 0.1))?.node).toBe('b');
  });

  it('never picks a node without ready VMs while one has some, and ignores other pools', () => {
    const nodes = [node('a', { default: 0, python: 9 }), node('b', { default: 2 }), node('c', { python: 4 })];
    const random = seededRandom(1);
    for (let i = 0; i < 200; i++) expect(placeVm('default', nodes, random)?.node).toBe('b');
  });

  it('falls back to a node with room that serves the pool when none has a ready VM', () => {
    const nodes = [node('a', { default: 0 }, 10, 10), node('b', { default: 0 }, 3, 10), node('c', { python: 0 }, 0, 10)];
    const random = seededRandom(2);
    for (let i = 0; i < 50; i++) expect(placeVm('default', nodes, random)).toEqual({ node: 'b', reason: 'capacity', score: 7 });
    expect(placeVm('default', [node('a', { default: 0 }, 10, 10)], random)).toBeNull();
    expect(placeVm('nope', nodes, random)).toBeNull();
  });

  it('skips excluded nodes', () => {
    const nodes = [node('a', { default: 9 }), node('b', { default: 1 })];
    expect(placeVm('default', nodes, seededRandom(3), { exclude: new Set(['a']) })?.node).toBe('b');
    expect(placeVm('default', nodes, seededRandom(3), { exclude: new Set(['a', 'b']) })).toBeNull();
  });

  it('is deterministic for a seed and the order of the view does not matter', () => {
    const nodes = Array.from({ length: 20 }, (_, i) => node(`n${i}`, { default: i % 4 }));
    const run = (list: NodeView[]) => {
      const random = seededRandom(42);
      return Array.from({ length: 100 }, () => placeVm('default', list, random)?.node);
    };
    expect(run([...nodes].reverse())).toEqual(run(nodes));
    expect(new Set(run(nodes)).size).toBeGreaterThan(5);
  });

  it('spreads load: over many placements the busiest node gets far less than all of them', () => {
    // 10 nodes, each with 3 ready VMs; placements take one VM each and the node refills at once.
    const nodes = Array.from({ length: 10 }, (_, i) => node(`n${i}`, { default: 3 }));
    const counts = new Map<string, number>();
    const random = seededRandom(9);
    for (let i = 0; i < 1000; i++) {
      const choice = placeVm('default', nodes, random)!;
      counts.set(choice.node, (counts.get(choice.node) ?? 0) + 1);
    }
    expect(counts.size).toBe(10);
    expect(Math.max(...counts.values())).toBeLessThan(200);
  });

  it('prefers more ready VMs: a node with many ready VMs is chosen more often than one with few', () => {
    const nodes = [node('rich', { default: 8 }), node('poor', { default: 1 }), node('mid', { default: 4 })];
    const counts = new Map<string, number>();
    const random = seededRandom(5);
    for (let i = 0; i < 3000; i++) {
      const n = placeVm('default', nodes, random)!.node;
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    // rich wins every pair it is in (2 of 3 pairs), poor none.
    expect(counts.get('poor') ?? 0).toBe(0);
    expect(counts.get('rich')!).toBeGreaterThan(counts.get('mid')!);
  });
});

describe('VM id pattern of the API', () => {
  it('is CLUSTER_VM_ID_PATTERN (schemas-vms.ts writes it out so the published client does not import the cluster layer)', async () => {
    const { VmIdParams } = await import('../api/schemas-vms.js');
    expect(VmIdParams.properties.id.pattern).toBe(CLUSTER_VM_ID_PATTERN.source);
  });
});
