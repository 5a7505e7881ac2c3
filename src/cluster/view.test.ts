import { describe, expect, it } from 'vitest';
import { ClusterView, MAX_DEPARTED, MAX_DEPARTED_VM_LISTS, MAX_PUBLISHED_VMS, type NodeInfo, type PublishedVm } from './view.js';

const info = (name: string, started = '2026-12-01T00:00:00.000Z'): NodeInfo => ({
  name,
  url: `http://${name}:8080`,
  version: '0.1.0',
  started_at: started,
  capacity: { vcpus: 2, memory_mib: 4096, max_vms: 8 },
});
const P = '/tfc/';

describe('ClusterView', () => {
  it('tracks nodes, their pools and VM counts, and reports joins and departures', () => {
    const v = new ClusterView(P, () => new Date('2026-12-01T01:00:00.000Z'));
    expect(v.put(`${P}nodes/a`, JSON.stringify(info('a')))).toEqual([{ type: 'joined', node: info('a') }]);
    expect(v.put(`${P}pools/a/default`, JSON.stringify({ ready: 2, allocated: 1, target: 3 }))).toEqual([]);
    v.put(`${P}pools/a/_node`, JSON.stringify({ vms: 3 }));
    expect(v.node('a')).toMatchObject({ name: 'a', vms: 3, pools: { default: { ready: 2, allocated: 1, target: 3 } } });
    expect(v.put(`${P}nodes/a`, JSON.stringify(info('a', '2026-12-01T00:30:00.000Z')))[0].type).toBe('updated');
    expect(v.delete(`${P}nodes/a`)).toEqual([{ type: 'left', node: info('a', '2026-12-01T00:30:00.000Z'), at: '2026-12-01T01:00:00.000Z' }]);
    expect(v.nodes()).toEqual([]);
    expect(v.departure('a')?.at).toBe('2026-12-01T01:00:00.000Z');
    // Its last published VM count is kept: those VMs are reported lost.
    expect(v.departure('a')?.vms).toBe(3);
    expect(v.departures().map((d) => [d.node.name, d.vms])).toEqual([['a', 3]]);
    // Coming back clears the departure.
    v.put(`${P}nodes/a`, JSON.stringify(info('a')));
    expect(v.departure('a')).toBeUndefined();
  });

  it('ignores keys and values it does not understand (a newer tfc may add some)', () => {
    const v = new ClusterView(P);
    expect(v.put(`${P}nodes/a`, '{bad json')).toEqual([]);
    expect(v.put(`${P}nodes/b`, JSON.stringify(info('a')))).toEqual([]); // name differs from the key
    expect(v.put(`${P}future/x`, '1')).toEqual([]);
    expect(v.put(`${P}pools/a/default`, JSON.stringify({ ready: -1, allocated: 0, target: 0 }))).toEqual([]);
    expect(v.put('/other/nodes/a', JSON.stringify(info('a')))).toEqual([]);
    expect(v.ignored).toBe(5);
    expect(v.nodes()).toEqual([]);
  });

  it('reset() reports only the difference from the previous view', () => {
    const v = new ClusterView(P);
    v.put(`${P}nodes/a`, JSON.stringify(info('a')));
    v.put(`${P}nodes/b`, JSON.stringify(info('b')));
    v.put(`${P}pools/a/_node`, JSON.stringify({ vms: 2 }));
    const events = v.reset([
      { key: `${P}nodes/b`, value: JSON.stringify(info('b')) },
      { key: `${P}nodes/c`, value: JSON.stringify(info('c')) },
    ]);
    expect(events.map((e) => `${e.type} ${e.node.name}`).sort()).toEqual(['joined c', 'left a']);
    expect(v.departure('a')?.vms).toBe(2);
    expect(v.nodes().map((n) => n.name)).toEqual(['b', 'c']);
  });

  it('remembers a bounded number of departed nodes', () => {
    const v = new ClusterView(P);
    for (let i = 0; i <= MAX_DEPARTED; i++) {
      v.put(`${P}nodes/n${i}`, JSON.stringify(info(`n${i}`)));
      v.delete(`${P}nodes/n${i}`);
    }
    expect(v.departure('n0')).toBeUndefined();
    expect(v.departure(`n${MAX_DEPARTED}`)).toBeDefined();
  });

  it('keeps the last published VM list of a departed node, and drops it when the node rejoins', () => {
    let now = new Date('2026-12-01T01:00:00.000Z');
    const v = new ClusterView(P, () => now);
    const vms: PublishedVm[] = [
      { id: 'vm-00000000000a', pool: 'default', state: 'allocated' },
      { id: 'vm-00000000000b', pool: null, state: 'allocated' },
    ];
    v.put(`${P}nodes/c`, JSON.stringify(info('c')));
    v.put(`${P}pools/c/_node`, JSON.stringify({ vms: 2, list: vms, truncated: false }));
    expect(v.node('c')).toMatchObject({ vms: 2, vm_list: vms, vm_list_truncated: false });
    // The lease goes: the load key may be deleted before the node key (same revision); the list survives either order.
    v.delete(`${P}pools/c/_node`);
    v.delete(`${P}nodes/c`);
    expect(v.departure('c')).toMatchObject({ at: '2026-12-01T01:00:00.000Z', vms: 2, list: vms, truncated: false });
    // Rejoin: the departure (and its lost list) goes; the new process publishes its own list.
    now = new Date('2026-12-01T01:05:00.000Z');
    v.put(`${P}nodes/c`, JSON.stringify(info('c', '2026-12-01T01:04:00.000Z')));
    expect(v.departure('c')).toBeUndefined();
    expect(v.departures()).toEqual([]);
    expect(v.node('c')).toMatchObject({ vms: 0, vm_list: [] });
    v.put(`${P}pools/c/_node`, JSON.stringify({ vms: 1, list: [{ id: 'vm-00000000000f', pool: 'default', state: 'ready' }], truncated: false }));
    expect(v.node('c')?.vm_list.map((x) => x.id)).toEqual(['vm-00000000000f']);
  });

  it('reads older and damaged VM lists as incomplete, and bounds what it keeps', () => {
    const v = new ClusterView(P);
    v.put(`${P}nodes/a`, JSON.stringify(info('a')));
    // An older tfc: the count alone.
    v.put(`${P}pools/a/_node`, JSON.stringify({ vms: 2 }));
    expect(v.node('a')).toMatchObject({ vms: 2, vm_list: [], vm_list_truncated: true });
    // A bad entry is dropped, the rest kept.
    const good = { id: 'vm-00000000000a', pool: 'default', state: 'ready' };
    v.put(`${P}pools/a/_node`, JSON.stringify({ vms: 2, list: [good, { id: '../x', pool: 'p', state: 'ready' }], truncated: false }));
    expect(v.node('a')).toMatchObject({ vm_list: [good], vm_list_truncated: true });
    v.put(`${P}pools/a/_node`, JSON.stringify({ vms: 1, list: [{ ...good, state: 'weird' }], truncated: false }));
    expect(v.node('a')).toMatchObject({ vm_list: [], vm_list_truncated: true });
    // Longer than a node may publish: cut at the bound.
    const many = Array.from({ length: MAX_PUBLISHED_VMS + 3 }, (_, i) => ({ id: `vm-${i.toString(16).padStart(12, '0')}`, pool: null, state: 'allocated' }));
    v.put(`${P}pools/a/_node`, JSON.stringify({ vms: many.length, list: many, truncated: false }));
    expect(v.node('a')?.vm_list).toHaveLength(MAX_PUBLISHED_VMS);
    expect(v.node('a')?.vm_list_truncated).toBe(true);
    // Not a count: ignored, the previous value stays.
    const ignored = v.ignored;
    v.put(`${P}pools/a/_node`, JSON.stringify({ vms: -1, list: [] }));
    expect(v.ignored).toBe(ignored + 1);
    expect(v.node('a')?.vms).toBe(many.length);
  });

  it('keeps the lost VM lists of the most recent departures only', () => {
    const v = new ClusterView(P);
    const n = MAX_DEPARTED_VM_LISTS + 2;
    for (let i = 0; i < n; i++) {
      v.put(`${P}nodes/n${i}`, JSON.stringify(info(`n${i}`)));
      const list = [{ id: `vm-${i.toString(16).padStart(12, '0')}`, pool: 'default', state: 'allocated' }];
      v.put(`${P}pools/n${i}/_node`, JSON.stringify({ vms: 1, list, truncated: false }));
      v.delete(`${P}nodes/n${i}`);
    }
    const d = v.departures();
    expect(d).toHaveLength(n);
    // The two oldest keep their count and are marked incomplete; the others keep their list.
    expect(d.slice(0, 2).map((x) => [x.node.name, x.vms, x.list.length, x.truncated])).toEqual([
      ['n0', 1, 0, true],
      ['n1', 1, 0, true],
    ]);
    expect(d.slice(2).every((x) => x.list.length === 1 && !x.truncated)).toBe(true);
    expect(d.at(-1)!.list[0].id).toBe(`vm-${(n - 1).toString(16).padStart(12, '0')}`);
  });
});
