import type { Command } from 'commander';
import type { ClusterDescription } from '../../cluster/forward.js';
import { ApiClient } from '../api-client.js';
import type { WithContext } from '../context.js';
import { printJson, renderTable } from '../output.js';

/** `ready/target` of each pool, e.g. `default 2/2, python 0/1`. */
function poolsCell(pools: Record<string, { ready: number; target: number }>): string {
  const names = Object.keys(pools).sort();
  return names.length === 0 ? '-' : names.map((n) => `${n} ${pools[n].ready}/${pools[n].target}`).join(', ');
}

/** The table `tfc cluster ls` prints: live nodes, then departed ones (their VMs lost). */
export function renderCluster(c: ClusterDescription): string {
  const rows: Array<Array<string | number>> = c.nodes.map((n) => [
    n.name + (n.name === c.node ? ' *' : ''),
    n.url,
    'live',
    n.vms,
    poolsCell(n.pools),
    n.started_at,
  ]);
  for (const d of c.departed) rows.push([d.name, d.url, `lost since ${d.left_at}`, d.vms, '-', '-']);
  const head = `node ${c.node} (${c.healthy ? 'healthy: holds its etcd lease' : 'UNHEALTHY: no live etcd lease; placement fails with CLUSTER_UNAVAILABLE'})\n`;
  return head + renderTable(['node', 'url', 'state', 'vms', 'pools (ready/target)', 'started'], rows) + '\n';
}

/** `tfc cluster ls` (docs/cluster.md). */
export function registerClusterCommands(program: Command, withContext: WithContext): void {
  const cluster = program.command('cluster').description('cluster mode: the nodes of the cluster a running daemon belongs to');
  cluster
    .command('ls')
    .description('nodes with their URL, VM count and pools (ready/target); departed nodes and since when their VMs are lost')
    .option('--fresh', 'check the node list against etcd (fails with CLUSTER_UNAVAILABLE without a quorum)')
    .option('--json', 'print as JSON')
    .action(async (opts: { fresh?: boolean; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const r = await ApiClient.fromContext(ctx).request<ClusterDescription>('GET', `/v1/cluster${opts.fresh ? '?fresh=true' : ''}`);
        if (opts.json) printJson(r);
        else process.stdout.write(renderCluster(r));
        return 0;
      });
    });
}
