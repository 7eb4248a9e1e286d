// A tiny seeded random source for tests (xorshift32): the same seed gives the same
// sequence on every machine, so a failing random case can be replayed.

/** Numbers in [0, 1) from `seed` (0 is taken as 1). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}
