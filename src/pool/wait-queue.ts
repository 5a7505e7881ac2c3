import type { PoolMember } from './pool-types.js';

/** One allocation waiting for a VM. */
export interface Waiter {
  /** Reuse pools: it may take VMs kept for this owner (and unowned ones). */
  owner?: string;
  resolve(member: PoolMember): void;
  reject(err: Error): void;
  /** Its deadline (POOL_EXHAUSTED when it fires). */
  timer?: NodeJS.Timeout;
}

/**
 * The line of allocations waiting for a VM: first come, first served (a VM
 * kept for an owner goes to that owner's first waiter), bounded. Only the
 * bookkeeping: the pool sets the deadlines and hands the VMs out.
 */
export class WaitQueue {
  private readonly items: Waiter[] = [];

  /** @param limit the most allocations that may wait at once (the pool refuses more). */
  constructor(readonly limit: number) {}

  get length(): number {
    return this.items.length;
  }

  get full(): boolean {
    return this.items.length >= this.limit;
  }

  /**
   * Joins the line at the back, or at the front (an allocation whose VM
   * failed its check keeps its turn). Returns its position (1 = next).
   * Throws RangeError when full: check `full` first.
   */
  push(waiter: Waiter, front = false): number {
    if (this.full) throw new RangeError(`the wait queue is full (${this.limit})`);
    if (front) this.items.unshift(waiter);
    else this.items.push(waiter);
    return front ? 1 : this.items.length;
  }

  /** Takes the first waiter that may have a VM kept for `owner` (undefined: a VM anyone may have) out of the line. */
  shiftFor(owner: string | undefined): Waiter | undefined {
    const i = this.items.findIndex((w) => owner === undefined || owner === w.owner);
    return i < 0 ? undefined : this.items.splice(i, 1)[0];
  }

  /** Takes `waiter` out of the line; returns the position it had (1 = next), or 0 when it was not waiting. */
  remove(waiter: Waiter): number {
    const i = this.items.indexOf(waiter);
    if (i >= 0) this.items.splice(i, 1);
    return i + 1;
  }

  /** Empties the line, returning who was in it, in order. */
  drain(): Waiter[] {
    return this.items.splice(0);
  }
}
