/**
 * Warm pools: VMs cloned from golden snapshots kept ready ahead of demand,
 * handed out by a configurable strategy under a lease (allocate ttl_ms,
 * keepalive), health-checked (dead VMs free their slot, allocated or not),
 * refilled, sized by demand (the queueing math in demand.ts); allocations that
 * find no VM wait in a bounded first-come, first-served line and are told
 * when to retry. Knows VMs only through the vm and snapshot modules; never
 * imports HTTP code.
 */
export { Pool, type PoolMember, type PoolStatus, type Allocation, type PoolBackend, type PoolEvent } from './pool.js';
export { PoolManager } from './pool-manager.js';
export { STRATEGIES, seededRandom, type Candidate, type Strategy } from './strategies.js';
export { DemandTracker } from './demand.js';
