// Seeded pseudo-random numbers that are the same on every machine: xoshiro128**
// (Blackman & Vigna, 2018; 128-bit state, period 2^128 - 1), which needs only 32-bit
// integer operations, so JS computes it exactly with Math.imul and >>> (no floats
// involved until the final scaling). The state is seeded from a u64 through splitmix64,
// as the xoshiro authors recommend, so nearby seeds give unrelated streams.
//
// Used by the sampler (one stream per sequence) and by make-model (one stream per
// tensor, so tensors can be generated in any order and in chunks of any size).

const MASK64 = (1n << 64n) - 1n;

/** splitmix64 step: returns [next state, output]. */
function splitmix64(state: bigint): [bigint, bigint] {
  const s = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = s;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [s, z ^ (z >> 31n)];
}

/** Normalise a seed given as number or bigint to a u64 (negative numbers wrap). */
export function toSeed64(seed: number | bigint): bigint {
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    seed = BigInt(seed);
  }
  return seed & MASK64;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /**
   * @param seed any integer (taken modulo 2^64)
   * @param stream selects an independent stream for the same seed (e.g. tensor index)
   */
  constructor(seed: number | bigint, stream: number | bigint = 0) {
    let st = toSeed64(seed) ^ ((toSeed64(stream) * 0xd1342543de82ef95n) & MASK64);
    let a: bigint;
    let b: bigint;
    [st, a] = splitmix64(st);
    [st, b] = splitmix64(st);
    this.s0 = Number(a & 0xffffffffn) | 0;
    this.s1 = Number(a >> 32n) | 0;
    this.s2 = Number(b & 0xffffffffn) | 0;
    this.s3 = Number(b >> 32n) | 0;
    // The all-zero state is the one xoshiro cannot leave; splitmix64 practically never
    // yields it, but guard anyway.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A generator in an exact state (for checking against the reference C code). */
  static fromState(s0: number, s1: number, s2: number, s3: number): Rng {
    const r = new Rng(0);
    r.s0 = s0 | 0;
    r.s1 = s1 | 0;
    r.s2 = s2 | 0;
    r.s3 = s3 | 0;
    return r;
  }

  /** Next 32 random bits as an unsigned integer. */
  nextU32(): number {
    const s1 = this.s1;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r >>> 0;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  nextDouble(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /**
   * Fill `dst` with floats uniform in [lo, hi), 24 random bits each. Bulk path for
   * make-model: the state lives in locals for the loop.
   */
  fillUniform(dst: Float32Array, lo: number, hi: number): void {
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    const scale = (hi - lo) / 16777216;
    for (let i = 0; i < dst.length; i++) {
      const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      dst[i] = lo + (r >>> 8) * scale;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
