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

/** The VMs section of `tfc cluster ls --vms`: every published VM, the lost ones with the reason (once per departed node). */
function renderVms(c: ClusterDescription): string {
  const rows: Array<Array<string | number>> = [];
  const notes: string[] = [];
  const unlisted = (name: string, vms: number, listed: number, truncated: boolean) => {
    if (truncated && vms > listed) notes.push(`${name}: ${vms - listed} of its ${vms} VMs are not listed (a node publishes at most 1024 ids)`);
    else if (truncated) notes.push(`${name}: its VM list is incomplete (an older node, or a departure too old to keep its list)`);
  };
  for (const n of c.nodes) {
    for (const vm of n.vm_list) rows.push([vm.id, n.name, vm.pool ?? '-', vm.state]);
    unlisted(n.name, n.vms, n.vm_list.length, n.vm_list_truncated);
  }
  for (const d of c.departed) {
    for (const vm of d.vm_list) rows.push([vm.id, d.name, vm.pool ?? '-', 'lost']);
    if (d.vms > 0) notes.push(`${d.name}: lost: ${d.reason}`);
    unlisted(d.name, d.vms, d.vm_list.length, d.vm_list_truncated);
  }
  const table = rows.length === 0 ? 'no VMs\n' : renderTable(['vm', 'node', 'pool', 'state'], rows) + '\n';
  return '\nVMs\n' + table + notes.map((n) => `${n}\n`).join('');
}

/** The table `tfc cluster ls` prints: live nodes, then departed ones (their VMs lost); with `vms`, every VM of every node. */
export function renderCluster(c: ClusterDescription, options: { vms?: boolean } = {}): string {
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
  let out = head + renderTable(['node', 'url', 'state', 'vms', 'pools (ready/target)', 'started'], rows) + '\n';
  if (options.vms) out += renderVms(c);
  else {
    const lost = c.departed.reduce((sum, d) => sum + d.vms, 0);
    if (lost > 0) out += `${lost} VM${lost === 1 ? '' : 's'} lost with departed nodes (tfc cluster ls --vms lists them with the reason)\n`;
  }
  return out;
}

/** `tfc cluster ls` (docs/cluster.md). */
export function registerClusterCommands(program: Command, withContext: WithContext): void {
  const cluster = program.command('cluster').description('cluster mode: the nodes of the cluster a running daemon belongs to');
  cluster
    .command('ls')
    .description('nodes with their URL, VM count and pools (ready/target); departed nodes and since when their VMs are lost')
    .option('--vms', 'also list the VMs of every node (ids usable with tfc commands); those of departed nodes are lost, with the reason')
    .option('--fresh', 'check the node list against etcd (fails with CLUSTER_UNAVAILABLE without a quorum)')
    .option('--json', 'print as JSON')
    .action(async (opts: { vms?: boolean; fresh?: boolean; json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const r = await ApiClient.fromContext(ctx).request<ClusterDescription>('GET', `/v1/cluster${opts.fresh ? '?fresh=true' : ''}`);
        if (opts.json) printJson(r);
        else process.stdout.write(renderCluster(r, { vms: opts.vms }));
        return 0;
      });
    });
}
