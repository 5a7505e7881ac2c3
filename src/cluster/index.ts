/**
 * Cluster mode: several `tfc serve` daemons coordinated by etcd. This module
 * owns the `[cluster]` settings, the node's membership (a key under an etcd
 * lease, kept alive; a watch that keeps a local view of live nodes and their
 * pool counts), the rate-limited publisher of pool counts, and placement
 * (which node allocates, and VM ids that name their node). It only decides
 * where a request goes: each node keeps its own VMs, pools and SQLite store.
 *
 * It must not import the HTTP framework, the pools or the VM service (the
 * daemon feeds it counts and asks it questions), must never block local
 * serving on etcd, and must not write its own consensus or failure detector:
 * leases and watches come from etcd. docs/cluster.md has the design.
 */
export {
  ClusterFileSchema,
  CLUSTER_DEFAULTS,
  NODE_NAME_PATTERN,
  resolveClusterConfig,
  fromFile,
  defaultNodeName,
  type ClusterConfig,
  type ClusterFile,
} from './config.js';
export { createEtcdClient, bounded } from './etcd-client.js';
export { Membership, type MembershipConfig, type MembershipSelf, type MembershipOptions, type MembershipEvents } from './membership.js';
export { PoolPublisher, type LeaseSource, type PublisherConfig, type PublisherStats, type PublisherOptions } from './publisher.js';
export {
  placeVm,
  formatVmId,
  parseVmId,
  seededRandom,
  CLUSTER_VM_ID_PATTERN,
  LOCAL_VM_ID_PATTERN,
  NODE_SEPARATOR,
  type PlacementChoice,
  type ParsedVmId,
  type Random,
} from './placement.js';
export {
  ClusterView,
  lostReason,
  MAX_PUBLISHED_VMS,
  type NodeInfo,
  type NodeView,
  type NodeCapacity,
  type PoolCounts,
  type PublishedVm,
  type ViewEvent,
} from './view.js';
export {
  ClusterGateway,
  FORWARDED_BY_HEADER,
  PLACED_HEADER,
  SERVED_BY_HEADER,
  type ClusterApi,
  type ClusterDescription,
  type RoutePlan,
  type MembershipLike,
} from './forward.js';
export { startClusterNode, localVmList, type ClusterNode, type ClusterNodeOptions, type LocalVmSources } from './node.js';
