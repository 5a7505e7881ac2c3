import type { PoolStrategyName } from '../config/index.js';
import { seededRandom } from '../random.js';

/** What a strategy may look at for one ready VM. */
export interface Candidate {
  /** Increasing number given to each VM the pool creates. */
  seq: number;
  /** Measured time from restore start to agent-ready for this VM. */
  readyLatencyMs: number;
  /** When it was last allocated (creation time if never). */
  lastUsedAt: number;
  createdAt: number;
}

/** Mutable per-pool state some strategies keep between picks. */
export interface StrategyState {
  /** round-robin: seq of the last VM handed out. */
  lastSeq: number;
  /** weighted-random: a seeded generator in [0, 1). */
  random: () => number;
}

export type Strategy = (ready: readonly Candidate[], state: StrategyState) => Candidate;

/** Mulberry32 (src/random.ts): reproducible picks for a given strategy_seed. */
export { seededRandom };

function minBy(ready: readonly Candidate[], key: (c: Candidate) => number): Candidate {
  return ready.reduce((best, c) => (key(c) < key(best) || (key(c) === key(best) && c.seq < best.seq) ? c : best));
}

/**
 * The allocation strategies of the original plan. Each gets a non-empty
 * list of ready VMs and returns one of them.
 */
export const STRATEGIES: Record<PoolStrategyName, Strategy> = {
  /** The VM that has been ready longest (FIFO): keeps VM ages even. */
  'first-available': (ready) => minBy(ready, (c) => c.seq),
  /** The VM that became ready fastest: a proxy for a healthy, un-contended VMM. */
  'best-performance': (ready) => minBy(ready, (c) => c.readyLatencyMs),
  /** The VM idle longest: spreads wear in reuse pools. */
  'least-recently-used': (ready) => minBy(ready, (c) => c.lastUsedAt),
  /** Cycles through VMs in creation order, continuing after the last one handed out. */
  'round-robin': (ready, state) => {
    const sorted = [...ready].sort((a, b) => a.seq - b.seq);
    const next = sorted.find((c) => c.seq > state.lastSeq) ?? sorted[0];
    state.lastSeq = next.seq;
    return next;
  },
  /** Random, weighted towards faster VMs (weight = 1 / ready latency); reproducible with strategy_seed. */
  'weighted-random': (ready, state) => {
    const sorted = [...ready].sort((a, b) => a.seq - b.seq);
    const weights = sorted.map((c) => 1 / Math.max(1, c.readyLatencyMs));
    const total = weights.reduce((a, b) => a + b, 0);
    let x = state.random() * total;
    for (let i = 0; i < sorted.length; i++) {
      x -= weights[i];
      if (x < 0) return sorted[i];
    }
    return sorted[sorted.length - 1];
  },
};
