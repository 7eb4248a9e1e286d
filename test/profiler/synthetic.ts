// Deterministic synthetic data for the profiler tests: a seeded RNG and power-law
// activation counts shaped like those measured on ReLU models (a few hot neurons, a long
// cold tail).

/** mulberry32: small, fast, seedable; good enough for test data. */
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

/**
 * Counts over `tokens` tokens where neuron rank r (in a random permutation) fires with
 * probability min(1, a * r^-alpha), sampled binomially via its expectation plus noise.
 */
export function powerLawCounts(nLayer: number, nFf: number, tokens: number, alpha: number, seed: number): Float64Array[] {
  const rand = seededRandom(seed);
  return Array.from({ length: nLayer }, (_, l) => {
    const perm = Array.from({ length: nFf }, (_, i) => i);
    for (let i = nFf - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    const out = new Float64Array(nFf);
    const a = alpha * (1 + 0.1 * l);
    for (let r = 0; r < nFf; r++) {
      const p = Math.min(1, 0.9 * Math.pow(r + 1, -a));
      const mean = p * tokens;
      const noisy = mean + Math.sqrt(mean * (1 - p) + 1e-9) * (rand() - 0.5);
      out[perm[r]] = Math.max(0, Math.min(tokens, Math.round(noisy)));
    }
    return out;
  });
}
