// A seeded random source shared by pool strategies and cluster placement.
// Imports nothing of the project (a root module), so both can use it
// without an import cycle between their modules.

/** Mulberry32: a tiny, well-distributed seeded PRNG in [0, 1) (reproducible picks for a given seed). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
