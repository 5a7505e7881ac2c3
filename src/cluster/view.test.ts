import { describe, expect, it } from 'vitest';
import { ClusterView, MAX_DEPARTED, type NodeInfo } from './view.js';

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
});
