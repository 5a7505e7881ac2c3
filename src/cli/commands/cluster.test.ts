import { describe, expect, it } from 'vitest';
import { renderCluster } from './cluster.js';

describe('tfc cluster ls', () => {
  it('prints live nodes with pools, and departed nodes with since when their VMs are lost', () => {
    const capacity = { vcpus: 2, memory_mib: 4096, max_vms: 4 };
    const out = renderCluster({
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
        },
        { name: 'node-2', url: 'http://10.0.0.2:8080', version: '0.1.0', started_at: 'T2', capacity, vms: 0, pools: {} },
      ],
      departed: [{ name: 'node-3', url: 'http://10.0.0.3:8080', left_at: '2026-12-01T01:00:00.000Z', vms: 2, state: 'lost', reason: 'r' }],
    });
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toContain('node node-1 (healthy');
    expect(lines.find((l) => l.includes('node-1 *'))).toMatch(/10\.0\.0\.1:8080\W+live\W+3\W+default 2\/2, py 0\/1/);
    expect(lines.find((l) => l.includes('node-2'))).toMatch(/live\W+0\W+-/);
    expect(lines.find((l) => l.includes('node-3'))).toMatch(/lost since 2026-12-01T01:00:00.000Z\W+2\W/);
    expect(renderCluster({ node: 'a', healthy: false, nodes: [], departed: [] })).toContain('UNHEALTHY');
  });
});
