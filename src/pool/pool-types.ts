import type { PoolConfig, Profile } from '../config/index.js';
import type { Vm } from '../vm/vm.js';

/** The pool's public shapes: members, status, allocations, backend, events. Types only. */

/** One VM the pool owns. */
export interface PoolMember {
  vm: Vm;
  seq: number;
  status: 'ready' | 'allocated';
  readyLatencyMs: number;
  createdAt: number;
  lastUsedAt: number;
  uses: number;
  /** Reuse pools: the owner a released VM is kept for. */
  owner?: string;
  /** Allocated VMs: when the lease runs out (epoch ms), and the TTL a keepalive without ttl_ms renews. */
  expiresAt?: number;
  leaseMs?: number;
  /**
   * Idle VMs: when its agent last answered (refill, health check; pool
   * clock). Within pools.X.skip_ping_within_ms of it an allocation of a
   * running VM skips the ping. Cleared when allocated: the caller may break it.
   */
  verifiedAt?: number;
  /** Stops listening for the VM's death (set while the pool owns it). */
  unwatch?: () => void;
}

export interface PoolStatus {
  name: string;
  profile: string;
  mode: PoolConfig['mode'];
  strategy: PoolConfig['strategy'];
  prewarm_state: PoolConfig['prewarmState'];
  min: number;
  max: number;
  target: number;
  ready: number;
  booting: number;
  allocated: number;
  /** Allocations queued for a VM (first come, first served). */
  waiting: number;
  /** Smoothed allocations per second (what the target follows). */
  demand_per_s: number;
  /** Smoothed refill time of a new VM: restore start to offered (rewarm and pause included). */
  refill_ms: number | null;
  /** Last refill failure, if the pool cannot currently make VMs. */
  last_error: string | null;
}

export interface Allocation {
  member: PoolMember;
  /** From the allocate call to a VM handed out (resumed, agent answering). */
  allocationMs: number;
  /** Of which: queued for a VM (the pool had none ready). */
  waitMs: number;
  /** Of which: resume and agent ping (0 when skipped: the VM answered within skip_ping_within_ms). */
  checkMs: number;
  /** Whether the VM was resumed/pinged on the request path. */
  checked: boolean;
}

/** How the pool makes and destroys VMs (the pool manager wires the snapshot manager and VM service in). */
export interface PoolBackend {
  /** A new VM cloned from the profile's golden snapshot, running, agent ready. */
  create(profile: Profile): Promise<Vm>;
  destroy(vm: Vm, reason: string): Promise<void>;
}

export type PoolEventKind = 'refill-failed' | 'replaced' | 'destroy-failed' | 'died' | 'lease-expired';

/** Something an operator may want in the log; the daemon logs these. */
export interface PoolEvent {
  pool: string;
  kind: PoolEventKind;
  message: string;
}

/**
 * What a pool reports as it happens (the daemon's event stream; see
 * src/events/pool-events.ts). Every method is optional, must not throw
 * (a throw is swallowed) and must not block: record and return.
 */
export interface PoolActivity {
  /** An allocation handed out `vmId` after `ms`. */
  allocated?(pool: string, vmId: string, ms: number): void;
  /** An allocation failed with `code` (POOL_EXHAUSTED, INVALID_ARGUMENT, ...) after `ms`. */
  allocationFailed?(pool: string, code: string, ms: number): void;
  /** An allocated VM was given back: released, or its lease ran out. */
  released?(pool: string, vmId: string, reason: string): void;
  /** The counts (ready, booting, allocated, target) may have changed. Called very often: coalesce. */
  changed?(pool: string): void;
}
