// The per-layer arithmetic behind `make-model --sparse` (see synthetic-sparse.ts for the
// whole design): which neurons are hot, how each gate row is built so that its sign is
// known in advance and can be predicted exactly, and the predictor weights that do it.
//
// Residual layout (n_embd = D):
//   dims [0, 32)          CONST: the same value c in every token embedding; nothing
//                         writes there, so every layer sees x[0..32) = c. Gate rows read
//                         it as a per-neuron bias.
//   dims [32, 32 + nS)    S ("token identity"): the embedding's random values; nothing
//                         writes there either, so every layer sees the embedding there.
//                         Gate rows read only CONST and S.
//   dims [32 + nS, D)     F: written by attention and the FFN (the model's working space).
//
// Gate row i = u * [ -R, digits_i (31 ints) | sign_i * V[group_i] (ints on S) | 0 on F ]
// (+ in "lowrank" mode a per-neuron float part on S). Integers on a lattice of step u
// (a power of two) with one -R per 32-block make Q4_0 (R = 8) and Q8_0 / F16 / BF16 / F32
// (R = 127) store the row exactly, and the CONST block (all values equal) survives the
// engine's Q8_0 activation quantisation exactly, so the gate the engine computes is the
// gate we designed up to rounding of order 0.5% of its spread.
//
// tools/device-check/ has a C++ port that writes the same bytes (for machines without
// Node); test/gguf/make-model-native.test.ts compares the two, so change both together.

import { Rng } from '../sampling/rng.js';
import { ldexp, log, pow } from './portable-math.js';

export const CONST_DIMS = 32;

export type PredictorMode = 'exact' | 'lowrank';

export interface SparseParams {
  /** Fraction of FFN neurons that are zero for a token, averaged over neurons. */
  sparsity: number;
  /** Power-law exponent: neuron of popularity rank r fires with probability ~ r^-alpha. */
  alpha: number;
  mode: PredictorMode;
  /** Predictor hidden size r (rows of fc1): 2 per direction group + a bias unit (predictorLayout). */
  rank: number;
  /** lowrank: share of each gate row's spread the predictor cannot see (std ratio). */
  hiddenNoise: number;
}

/** Highest firing probability any neuron gets (even the hottest neurons are sometimes off). */
export const P_MAX = 0.97;
/** Lowest (so the coldest neurons still fire now and then, as in profiled models). */
export const P_MIN = 1e-4;

/**
 * Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9).
 * Its log is portable-math's, so the C++ generator (tools/device-check) gets the same bits.
 */
export function probit(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`probit(${p}): p must be in (0, 1)`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -probit(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/**
 * Firing probabilities by popularity rank: p_r = clamp(A * r^-alpha, P_MIN, P_MAX), with A
 * found by bisection so that the mean is 1 - sparsity.
 */
export function powerLawProbabilities(nFf: number, sparsity: number, alpha: number): Float64Array {
  const target = 1 - sparsity;
  const p = new Float64Array(nFf);
  // r^-alpha once per rank (portable pow: the same bits in the C++ generator).
  const shape = new Float64Array(nFf);
  for (let r = 0; r < nFf; r++) shape[r] = pow(r + 1, -alpha);
  const fill = (A: number) => {
    let s = 0;
    for (let r = 0; r < nFf; r++) {
      p[r] = Math.min(P_MAX, Math.max(P_MIN, A * shape[r]));
      s += p[r];
    }
    return s / nFf;
  };
  let lo = 0;
  let hi = 1;
  while (fill(hi) < target) {
    // Once every neuron sits at P_MAX the mean cannot grow: a target at (or, by rounding,
    // just below) P_MAX is out of reach.
    if (hi * shape[nFf - 1] >= P_MAX) throw new RangeError(`a mean firing rate of ${target} needs neurons above P_MAX = ${P_MAX}`);
    hi *= 2;
  }
  for (let it = 0; it < 100; it++) {
    const mid = (lo + hi) / 2;
    if (fill(mid) < target) lo = mid;
    else hi = mid;
  }
  fill(hi);
  return p;
}

/** Dimensions of the three residual regions for a width. */
export function regions(nEmbd: number): { nS: number; f0: number } {
  if (nEmbd < 64 || nEmbd % 32 !== 0) throw new RangeError(`--sparse needs n_embd to be a multiple of 32 and at least 64, got ${nEmbd}`);
  const nS = (nEmbd - CONST_DIMS) >> 1;
  return { nS, f0: CONST_DIMS + nS };
}

/**
 * Where the predictor's hidden units sit (rows of fc1, columns of fc2): the bias unit at
 * 0, group t's "+" unit at gap + t and its "-" unit at gap + half + t. A rank of at least
 * 96 (PowerInfer's n_embd / 4 at every real size) uses gap = half = multiples of 32, so
 * each 32-block of an fc2 row holds at most one non-zero value and a block-quantized fc2
 * (Q4_0, Q8_0: the file's type, as PowerInfer's quantizer leaves it) stores it to within
 * the f16 block scale. Below 96 the units are packed (gap 1) and the predictor is f16.
 * Units not listed are zero rows of fc1 (and zero columns of fc2).
 */
export interface PredictorLayout {
  rank: number;
  /** Direction groups. */
  k: number;
  gap: number;
  half: number;
  /** Whether fc1/fc2 take the file's weight type (else f16, or f32 in f32 files). */
  fileType: boolean;
}

export function predictorLayout(rank: number): PredictorLayout {
  const gap = rank >= 96 ? 32 : 1;
  const half = Math.floor((rank - gap) / (2 * gap)) * gap;
  return { rank, k: half, gap, half, fileType: gap === 32 };
}

export interface LayerDesign {
  /** ffn_norm weights (1 on CONST). */
  ffnNorm: Float32Array;
  /** Per neuron: direction group, sign (+1/-1), firing probability, bias integer, spread s_i. */
  group: Int32Array;
  sign: Int8Array;
  prob: Float64Array;
  biasInt: Int32Array;
  spread: Float64Array;
  /** k x nS lattice integers of the group directions. */
  dirs: Int8Array;
  /** Spread of each group's term u * dirs[t] . (x (.) nw) over tokens (embedding values have variance 1). */
  groupSpread: Float64Array;
}

export interface SparseGeometry {
  nEmbd: number;
  nFf: number;
  nS: number;
  f0: number;
  /** Lattice radius: 8 for Q4_0-like gate types, 127 otherwise. */
  R: number;
  /** Lattice step of the gate (a power of two). */
  u: number;
  /** The CONST value of the embedding (negative). */
  c: number;
  k: number;
}

export function geometry(nEmbd: number, nFf: number, gateType: string, rank: number): SparseGeometry {
  const { nS, f0 } = regions(nEmbd);
  const { k } = predictorLayout(rank);
  if (k < 1) throw new RangeError(`--predictor-rank must be at least 3, got ${rank}`);
  // Q4_0 and the K-quants hold 4-5 bit integers; the others hold 127 levels exactly.
  const R = gateType === 'q4_0' || gateType.endsWith('_k') ? 8 : 127;
  // Step so that a group's spread is about 1 (uniform integers in [-R, R) have E[n^2] ~ R^2/3).
  // (Portable log and an exact power of two, so the C++ generator gets the same u.)
  const u = ldexp(1, Math.round(log(1 / Math.sqrt((nS * R * R) / 3)) / Math.LN2));
  // CONST carries a quarter of the embedding's energy (the rest of the model sees it only
  // through the gate bias and the up bias).
  const c = -8 * Math.sqrt((nEmbd - CONST_DIMS) / 8192);
  return { nEmbd, nFf, nS, f0, R, u, c, k };
}

/** Spread a sum over 31 digits in [-(R-1), R-1] as evenly as possible. */
export function biasDigits(sum: number, R: number, out: Int32Array): void {
  const n = CONST_DIMS - 1;
  const base = Math.trunc(sum / n);
  let rest = sum - base * n;
  for (let j = 0; j < n; j++) {
    let v = base;
    if (rest > 0) { v++; rest--; } else if (rest < 0) { v--; rest++; }
    out[j] = v;
  }
  if (out.some((v) => Math.abs(v) > R - 1)) throw new RangeError(`bias sum ${sum} does not fit 31 digits of at most ${R - 1}`);
}

/** Largest |sum of the 31 digits| a row can carry. */
export function maxDigitSum(R: number): number {
  return (CONST_DIMS - 1) * (R - 1);
}

/**
 * Everything about one layer's FFN that the gate, ffn_norm and predictor tensors need;
 * drawn from its own random stream, so any tensor can be produced on its own.
 */
export function layerDesign(g: SparseGeometry, p: SparseParams, seed: bigint, layer: number): LayerDesign {
  const rng = new Rng(seed, 0x5ba75e00 + layer);
  const { nEmbd, nFf, nS, f0, R, u, c, k } = g;
  // ffn_norm: 1 on CONST and S (so fc1's rows, which carry it, stay on the gate's
  // lattice in any type), uniform in [0.9, 1.1) on F.
  const ffnNorm = new Float32Array(nEmbd);
  const tmp = new Float32Array(nEmbd - CONST_DIMS);
  rng.fillUniform(tmp, 0.9, 1.1);
  ffnNorm.set(tmp, CONST_DIMS);
  ffnNorm.fill(1, 0, f0);

  // Group directions: uniform integers in [-R, R) (Q4_0) or [-R, R] with one -R in every
  // 32-block, which pins the quantiser's block scale to exactly u.
  const dirs = new Int8Array(k * nS);
  const groupSpread = new Float64Array(k);
  const span = R === 8 ? 16 : 255;
  for (let t = 0; t < k; t++) {
    const row = dirs.subarray(t * nS, (t + 1) * nS);
    for (let j = 0; j < nS; j++) row[j] = (rng.nextU32() % span) - R;
    for (let b0 = CONST_DIMS; b0 < f0; b0 += 32) {
      const len = Math.min(32, f0 - b0);
      row[b0 - CONST_DIMS + (rng.nextU32() % len)] = -R;
    }
    let ss = 0;
    for (let j = 0; j < nS; j++) {
      const w = row[j] * u * ffnNorm[CONST_DIMS + j];
      ss += w * w;
    }
    groupSpread[t] = Math.sqrt(ss);
  }

  // Hot neurons are scattered (a random permutation of popularity ranks), as in profiled models.
  const byRank = powerLawProbabilities(nFf, p.sparsity, p.alpha);
  const perm = new Int32Array(nFf);
  for (let i = 0; i < nFf; i++) perm[i] = i;
  for (let i = nFf - 1; i > 0; i--) {
    const j = rng.nextU32() % (i + 1);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  const prob = new Float64Array(nFf);
  const group = new Int32Array(nFf);
  const sign = new Int8Array(nFf);
  const biasInt = new Int32Array(nFf);
  const spread = new Float64Array(nFf);
  const noise = p.mode === 'lowrank' ? p.hiddenNoise : 0;
  const maxSum = maxDigitSum(R);
  for (let i = 0; i < nFf; i++) {
    prob[i] = byRank[perm[i]];
    group[i] = rng.nextU32() % k;
    sign[i] = rng.nextU32() & 1 ? 1 : -1;
    spread[i] = groupSpread[group[i]] * Math.sqrt(1 + noise * noise);
    // Fires iff bias + z > 0 with z ~ N(0, spread^2): bias = spread * probit(p).
    // The gate's CONST block contributes u * c * (sum of digits - R) (dim 0 holds -R).
    const want = (spread[i] * probit(prob[i])) / (u * c);
    const sum = Math.round(want) + R;
    biasInt[i] = Math.max(-maxSum, Math.min(maxSum, sum)) - R;
  }
  return { ffnNorm, group, sign, prob, biasInt, spread, dirs, groupSpread };
}
