import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../../errors/index.js';
import type { ApiDeps } from '../deps.js';

const Counts = {
  type: 'object',
  required: ['ready', 'allocated', 'target'],
  properties: { ready: { type: 'integer' }, allocated: { type: 'integer' }, target: { type: 'integer' } },
} as const;

const VmList = {
  type: 'array',
  description: 'its VMs as last published (at most 1024, sorted by id); ids name the node (NODE~vm-…)',
  items: {
    type: 'object',
    required: ['id', 'pool', 'state'],
    properties: {
      id: { type: 'string' },
      pool: { type: ['string', 'null'], description: 'null: a VM outside pools' },
      state: { type: 'string', enum: ['ready', 'allocated'] },
    },
  },
} as const;

const LostVmList = {
  type: 'array',
  description: 'the VMs it last published (at most 1024), each lost with the reason',
  items: {
    type: 'object',
    required: ['id', 'pool', 'state', 'reason'],
    properties: {
      id: { type: 'string' },
      pool: { type: ['string', 'null'] },
      state: { type: 'string', enum: ['lost'] },
      reason: { type: 'string' },
    },
  },
} as const;

const Truncated = {
  type: 'boolean',
  description: 'vm_list does not name all `vms` (more than 1024, an older node that publishes counts only, or a list forgotten past 100 departures)',
} as const;

const ClusterBody = {
  type: 'object',
  required: ['node', 'healthy', 'nodes', 'departed'],
  properties: {
    node: { type: 'string', description: 'the node that answered' },
    healthy: { type: 'boolean', description: 'this node holds a live etcd lease (placement works)' },
    nodes: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'url', 'version', 'started_at', 'capacity', 'vms', 'pools', 'vm_list', 'vm_list_truncated'],
        properties: {
          name: { type: 'string' },
          url: { type: 'string' },
          version: { type: 'string' },
          started_at: { type: 'string' },
          capacity: {
            type: 'object',
            required: ['vcpus', 'memory_mib', 'max_vms'],
            properties: { vcpus: { type: 'integer' }, memory_mib: { type: 'integer' }, max_vms: { type: 'integer' } },
          },
          vms: { type: 'integer', description: 'VMs on the node, as it last published' },
          pools: { type: 'object', additionalProperties: Counts },
          vm_list: VmList,
          vm_list_truncated: Truncated,
        },
      },
    },
    departed: {
      type: 'array',
      description: 'nodes whose etcd lease expired (or was revoked) and that have not come back; their VMs are lost',
      items: {
        type: 'object',
        required: ['name', 'url', 'left_at', 'vms', 'state', 'reason', 'vm_list', 'vm_list_truncated'],
        properties: {
          name: { type: 'string' },
          url: { type: 'string' },
          left_at: { type: 'string' },
          vms: { type: 'integer' },
          state: { type: 'string', enum: ['lost'] },
          reason: { type: 'string' },
          vm_list: LostVmList,
          vm_list_truncated: Truncated,
        },
      },
    },
  },
} as const;

/** GET /v1/cluster: the nodes of the cluster as this node sees them (docs/cluster.md). */
export function clusterRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get<{ Querystring: { fresh?: string } }>(
    '/v1/cluster',
    {
      schema: {
        summary: 'Cluster mode: live nodes with their pools and VMs, and departed nodes with their VMs, lost',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { fresh: { type: 'string', enum: ['true', 'false'], description: 'check the node list against etcd (needs a quorum)' } },
        },
        response: { 200: ClusterBody },
      },
    },
    async (req) => {
      if (!deps.cluster) throw new NotFoundError('this daemon is not in cluster mode (no [cluster] table in its config; docs/cluster.md)');
      return deps.cluster.describe(req.query.fresh === 'true');
    },
  );
}
