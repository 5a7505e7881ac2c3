/**
 * Demand tracking for a pool's target size: an exponentially smoothed
 * allocation rate and refill (restore) time. The target is the number of
 * ready VMs that covers the allocations expected during one refill, plus
 * one spare, clamped to [min, max].
 */
export class DemandTracker {
  private ratePerMs = 0;
  private lastEventAt: number | null = null;
  private refillMs: number | null = null;
  private seenDemand = false;

  /**
   * @param halfLifeMs how quickly old demand is forgotten (default 30 s).
   */
  constructor(private readonly halfLifeMs = 30_000) {}

  /** Records one allocation at time `now` (ms). */
  recordAllocation(now: number): void {
    this.decayTo(now);
    this.seenDemand = true;
    // Each event adds an impulse whose integral over the decay is 1 allocation.
    this.ratePerMs += Math.LN2 / this.halfLifeMs;
  }

  /** Records how long one refill (restore to ready) took. */
  recordRefill(ms: number): void {
    this.refillMs = this.refillMs === null ? ms : 0.8 * this.refillMs + 0.2 * ms;
  }

  /** Smoothed allocations per second at `now`. */
  rate(now: number): number {
    this.decayTo(now);
    return this.ratePerMs * 1000;
  }

  get smoothedRefillMs(): number | null {
    return this.refillMs;
  }

  /**
   * The target at `now`: `initial` until the first allocation (no demand
   * seen yet), then ceil(rate x refill time) + 1, clamped to [min, max].
   */
  target(now: number, bounds: { min: number; max: number; initial: number }): number {
    const clamp = (n: number) => Math.min(bounds.max, Math.max(bounds.min, n));
    if (!this.seenDemand) return clamp(bounds.initial);
    const refill = this.refillMs ?? 1000;
    // VMs allocated during one refill; below a tenth of a VM it counts as none,
    // so a pool with faded demand shrinks back to min.
    const expected = (this.rate(now) / 1000) * refill;
    return clamp(Math.max(0, Math.ceil(expected - 0.1)) + 1);
  }

  private decayTo(now: number): void {
    if (this.lastEventAt !== null && now > this.lastEventAt) {
      this.ratePerMs *= Math.pow(0.5, (now - this.lastEventAt) / this.halfLifeMs);
    }
    this.lastEventAt = Math.max(now, this.lastEventAt ?? now);
  }
}
