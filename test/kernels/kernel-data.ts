// Shared inputs and oracles of the kernel tests: a seeded generator, the types and
// ISAs to cover, and an f16 decoder written from the IEEE definition (independent of
// the C code under test).
import { native } from '../../server/engine/binding.js';
import { GgmlType } from '../../server/engine/native-kernels.js';

export const K = native.kernels;
export { GgmlType };

/** Every ISA this machine runs (scalar always; avx2 / avx512 where the CPU has them). */
export const ISAS = K.availableIsas();

export interface TypeCase {
  name: string;
  type: number;
  /** Row lengths to cover: one block, several, and (for Q4_0) group tails. */
  ns: number[];
}

export const WEIGHT_TYPES: TypeCase[] = [
  { name: 'f32', type: GgmlType.F32, ns: [1, 7, 16, 33, 100, 1000] },
  { name: 'f16', type: GgmlType.F16, ns: [1, 7, 16, 33, 100, 1000] },
  { name: 'bf16', type: GgmlType.BF16, ns: [1, 7, 16, 33, 100, 1000] },
  // 3 blocks (no whole group of 4), 4 (one group), 5 and 17 (groups + tail), 128
  { name: 'q4_0', type: GgmlType.Q4_0, ns: [32, 96, 128, 160, 544, 4096] },
  { name: 'q8_0', type: GgmlType.Q8_0, ns: [32, 96, 128, 160, 544, 4096] },
  { name: 'q4_K', type: GgmlType.Q4_K, ns: [256, 512, 768, 2560] },
  { name: 'q5_K', type: GgmlType.Q5_K, ns: [256, 512, 768, 2560] },
  { name: 'q6_K', type: GgmlType.Q6_K, ns: [256, 512, 768, 2560] },
];

/** Deterministic xorshift32 in [-1, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 31 - 1;
  };
}

/** Weight-like values: mostly small, some outliers, per-row offsets (exercises mins). */
export function randomWeights(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  const offset = 0.2 * r();
  for (let i = 0; i < n; i++) {
    const v = r() * 0.5 + offset;
    out[i] = i % 97 === 0 ? v * 6 : v;
  }
  return out;
}

export function randomFloats(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * scale);
}

/** IEEE binary16 bits -> number, from the definition. */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 31) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

/** Sum of |w_i * x_i|: the scale against which a dot product's rounding is judged. */
export function absDotScale(w: Float32Array, x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += Math.abs(w[i] * x[i]);
  return s;
}
