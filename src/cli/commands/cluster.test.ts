import { describe, expect, it } from 'vitest';
import type { ClusterDescription } from '../../cluster/forward.js';
import { renderCluster } from './cluster.js';

const capacity = { vcpus: 2, memory_mib: 4096, max_vms: 4 };
const reason = "node node-3's etcd lease expired (or was revoked) at 2026-12-01T01:00:00.000Z; the VM's host is unreachable or dead, so the VM is lost";

function cluster(): ClusterDescription {
  return {
    node: 'node-1',
    healthy: true,
    nodes: [
      {
        name: 'node-1',
        url: 'http://10.0.0.1:8080',
        version: '0.1.0',
        started_at: 'T1',
        capacity,
        vms: 3,
        pools: { py: { ready: 0, allocated: 1, target: 1 }, default: { ready: 2, allocated: 1, target: 2 } },
        vm_list: [
          { id: 'node-1~vm-000000000001', pool: 'default', state: 'allocated' },
          { id: 'node-1~vm-000000000002', pool: 'default', state: 'ready' },
        ],
        vm_list_truncated: true,
      },
      { name: 'node-2', url: 'http://10.0.0.2:8080', version: '0.1.0', started_at: 'T2', capacity, vms: 0, pools: {}, vm_list: [], vm_list_truncated: false },
    ],
    departed: [
      {
        name: 'node-3',
        url: 'http://10.0.0.3:8080',
        left_at: '2026-12-01T01:00:00.000Z',
        vms: 2,
        state: 'lost',
        reason,
        vm_list: [
          { id: 'node-3~vm-00000000000a', pool: 'default', state: 'lost', reason },
          { id: 'node-3~vm-00000000000b', pool: null, state: 'lost', reason },
        ],
        vm_list_truncated: false,
      },
    ],
  };
}

describe('tfc cluster ls', () => {
  it('prints live nodes with pools, and departed nodes with since when their VMs are lost', () => {
    const out = renderCluster(cluster());
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toContain('node node-1 (healthy');
    expect(lines.find((l) => l.includes('node-1 *'))).toMatch(/10\.0\.0\.1:8080\W+live\W+3\W+default 2\/2, py 0\/1/);
    expect(lines.find((l) => l.includes('node-2'))).toMatch(/live\W+0\W+-/);
    expect(lines.find((l) => l.includes('node-3'))).toMatch(/lost since 2026-12-01T01:00:00.000Z\W+2\W/);
    // The default output stays short: no VM ids, a hint where the lost ones are.
    expect(out).not.toContain('vm-00000000000a');
    expect(lines.at(-1)).toBe('2 VMs lost with departed nodes (tfc cluster ls --vms lists them with the reason)');
    expect(renderCluster({ node: 'a', healthy: false, nodes: [], departed: [] })).toContain('UNHEALTHY');
    expect(renderCluster({ node: 'a', healthy: true, nodes: [], departed: [] })).not.toContain('lost');
  });

  it('--vms lists every VM with its node, pool and state; lost ones with the reason once per node', () => {
    const out = renderCluster(cluster(), { vms: true });
    const lines = out.trimEnd().split('\n');
    expect(lines.find((l) => l.includes('node-1~vm-000000000001'))).toMatch(/node-1\W+default\W+allocated/);
    expect(lines.find((l) => l.includes('node-1~vm-000000000002'))).toMatch(/node-1\W+default\W+ready/);
    expect(lines.find((l) => l.includes('node-3~vm-00000000000a'))).toMatch(/node-3\W+default\W+lost/);
    expect(lines.find((l) => l.includes('node-3~vm-00000000000b'))).toMatch(/node-3\W+-\W+lost/);
    expect(lines.filter((l) => l.includes(reason))).toEqual([`node-3: lost: ${reason}`]);
    // node-1 published 2 of its 3 VMs.
    expect(lines).toContain('node-1: 1 of its 3 VMs are not listed (a node publishes at most 1024 ids)');
    expect(out).not.toContain('--vms lists them');
  });
});
