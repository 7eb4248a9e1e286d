// The sampler chain for one sequence, over one row of logits (Float32Array, n_vocab):
//
//   logit bias -> repetition penalty -> presence/frequency penalties   (on a copy)
//   -> temperature (0: argmax, lowest id on ties) -> top-k -> top-p -> min-p -> draw
//
// Semantics:
//   - repetition penalty (llama.cpp): for each token seen in the last penaltyLastN
//     accepted tokens, a positive logit is divided by it, a negative one multiplied;
//   - presence/frequency (OpenAI): logit -= count * frequency + (count > 0) * presence,
//     over the same window;
//   - top-k keeps the k best; top-p the shortest best-first prefix whose probability
//     (after temperature, renormalised over what top-k kept) reaches p; min-p drops
//     tokens with probability < minP x the best one's (a ratio, so renormalising
//     earlier does not change it);
//   - the draw takes one uniform double from the sequence's xoshiro128** stream.
// Same seed, same logits, same accepted tokens -> same tokens, on any machine: only
// IEEE arithmetic, Math.exp/Math.log (fdlibm in V8) and integer RNG steps are involved.
//
// Cost per token: O(n) for the copy and bias/penalties; with top-k, O(n log k) and k
// exponentials; otherwise n exponentials, and for top-p an expected-O(n) quickselect by
// probability mass; never a sort of all logits.
// The draw walks the kept tokens best first after top-k, in id order otherwise. Logprobs (when asked) add one O(n) log-sum-exp and a top-N selection.

import { randomBytes } from 'node:crypto';
import { resolveSamplingParams, type SamplingParams } from './params.js';
import { Rng, toSeed64 } from './rng.js';
import { argmax, massPrefix, topK } from './select.js';

export interface TokenLogprob {
  token: number;
  logprob: number;
}

export interface SampleResult {
  token: number;
  /** With logprobs: log-probability of `token`. */
  logprob?: number;
  /** With topLogprobs > 0: the best alternatives, best first. */
  top?: TokenLogprob[];
}

export interface SampleOptions {
  /** Report the chosen token's log-probability. */
  logprobs?: boolean;
  /** Also report this many best tokens (OpenAI top_logprobs). */
  topLogprobs?: number;
}

export class SamplingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SamplingError';
  }
}

// Scratch shared by all samplers: sampling is synchronous and JS runs one at a time.
let work = new Float32Array(0);
let cand = new Int32Array(0);
let expv = new Float64Array(0);
let expById = new Float64Array(0);
let keptFlag = new Uint8Array(0);

function ensureScratch(n: number): void {
  if (work.length >= n) return;
  work = new Float32Array(n);
  cand = new Int32Array(n);
  expv = new Float64Array(n);
  expById = new Float64Array(n);
  keptFlag = new Uint8Array(n);
}

export class Sampler {
  readonly params: SamplingParams;
  /** The u64 seed in use (drawn at random when none was given). */
  readonly seed: bigint;
  private readonly rng: Rng;
  private readonly window: Int32Array;
  private windowPos = 0;
  private windowLen = 0;
  /** token -> occurrences within the penalty window. */
  private readonly counts = new Map<number, number>();

  constructor(
    params: Parameters<typeof resolveSamplingParams>[0],
    readonly nVocab: number,
  ) {
    if (!Number.isInteger(nVocab) || nVocab <= 0) throw new RangeError(`nVocab must be a positive integer, got ${nVocab}`);
    this.params = resolveSamplingParams(params, nVocab);
    this.seed = this.params.seed === undefined ? randomBytes(8).readBigUInt64LE(0) : toSeed64(this.params.seed);
    this.rng = new Rng(this.seed);
    this.window = new Int32Array(Math.max(0, this.params.penaltyLastN));
  }

  /** Record a token (prompt or generated) for the penalties. sample() records its own pick. */
  accept(token: number): void {
    const n = this.params.penaltyLastN;
    if (n === 0) return;
    if (n > 0) {
      if (this.windowLen === n) {
        const old = this.window[this.windowPos];
        const c = this.counts.get(old)! - 1;
        if (c === 0) this.counts.delete(old);
        else this.counts.set(old, c);
      } else {
        this.windowLen++;
      }
      this.window[this.windowPos] = token;
      this.windowPos = (this.windowPos + 1) % n;
    }
    this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
  }

  acceptMany(tokens: ArrayLike<number>): void {
    for (let i = 0; i < tokens.length; i++) this.accept(tokens[i]);
  }

  /**
   * Pick the next token from one row of logits and record it for the penalties.
   * Throws SamplingError when no token is possible (every logit -Infinity or NaN).
   */
  sample(logits: Float32Array, opts: SampleOptions = {}): SampleResult {
    if (logits.length !== this.nVocab) {
      throw new RangeError(`logits has ${logits.length} values, expected n_vocab = ${this.nVocab}`);
    }
    ensureScratch(this.nVocab);
    const w = work.subarray(0, this.nVocab);
    w.set(logits);
    this.applyBiasAndPenalties(w);
    // A temperature so small that 1/T overflows behaves as greedy.
    const greedy = this.params.temperature === 0 || !Number.isFinite(1 / this.params.temperature);
    const token = greedy ? argmax(w) : this.draw(w);
    if (token < 0) {
      throw new SamplingError('no token can be sampled: every logit is -Infinity or NaN (check logit_bias)');
    }
    const result: SampleResult = { token };
    const topN = opts.topLogprobs ?? 0;
    if (opts.logprobs || topN > 0) Object.assign(result, logprobsOf(w, token, topN));
    this.accept(token);
    return result;
  }

  private applyBiasAndPenalties(w: Float32Array): void {
    for (const [id, b] of this.params.logitBias) w[id] += b;
    const { repetitionPenalty: rp, presencePenalty: pp, frequencyPenalty: fp } = this.params;
    if (rp === 1 && pp === 0 && fp === 0) return;
    for (const [id, c] of this.counts) {
      if (id < 0 || id >= w.length) continue;
      let v = w[id];
      if (rp !== 1) v = v > 0 ? v / rp : v * rp;
      w[id] = v - c * fp - pp;
    }
  }

  /** Temperature, top-k, top-p, min-p, then one draw. Returns -1 if nothing is possible. */
  private draw(w: Float32Array): number {
    const count = truncateCandidates(w, this.params);
    if (count === 0) return -1;
    let total = 0;
    for (let i = 0; i < count; i++) total += expv[i];
    const u = this.rng.nextDouble() * total;
    let cum = 0;
    for (let i = 0; i < count; i++) {
      cum += expv[i];
      if (u < cum) return cand[i];
    }
    return cand[count - 1];
  }
}

/**
 * Temperature, top-k, top-p and min-p over w (after bias and penalties): leaves the kept
 * ids in cand[0..count) with their unnormalised weights in expv[], best first after
 * top-k, in id order otherwise, and returns count (0: nothing possible). A function of
 * its own so that keptCandidates below lets tests compare the kept set with the definitions.
 */
function truncateCandidates(w: Float32Array, params: SamplingParams): number {
  const { temperature, topK: k, topP, minP } = params;
  const invT = 1 / temperature;
  const useTopK = k > 0 && k < w.length;
  let count = 0;
  if (useTopK) {
    count = topK(w, k, cand); // best first
  } else {
    for (let id = 0; id < w.length; id++) if (w[id] > -Infinity) cand[count++] = id; // id order
  }
  if (count === 0) return 0;
  let lmax = w[cand[0]];
  if (!useTopK) for (let i = 1; i < count; i++) if (w[cand[i]] > lmax) lmax = w[cand[i]];
  let z = 0;
  for (let i = 0; i < count; i++) {
    const e = Math.exp((w[cand[i]] - lmax) * invT);
    expv[i] = e;
    z += e;
  }

  if (topP < 1) {
    if (useTopK) {
      // Already best first: cut the prefix.
      let cum = 0;
      let kept = 0;
      while (kept < count) {
        cum += expv[kept++];
        if (cum >= topP * z) break;
      }
      count = kept;
    } else {
      // Select the prefix's members without sorting, then put them back in id order
      // (the draw walks candidates in id order on this path).
      const all = count;
      for (let i = 0; i < all; i++) expById[cand[i]] = expv[i];
      const kept = massPrefix(w, cand, expv, all, topP * z);
      for (let i = 0; i < kept; i++) keptFlag[cand[i]] = 1;
      count = 0;
      for (let id = 0; id < w.length; id++) {
        if (keptFlag[id] === 0) continue;
        keptFlag[id] = 0;
        cand[count] = id;
        expv[count++] = expById[id];
      }
    }
  }

  if (minP > 0) {
    // The best candidate has exp(0) = 1, so the ratio test is expv >= minP.
    let kept = 0;
    for (let i = 0; i < count; i++) {
      if (expv[i] >= minP) {
        cand[kept] = cand[i];
        expv[kept++] = expv[i];
      }
    }
    count = kept;
  }
  return count;
}

/** The kept candidates for one row (w after bias and penalties), as copies: ids and weights. */
export function keptCandidates(w: Float32Array, params: SamplingParams): { ids: number[]; weights: number[] } {
  ensureScratch(w.length);
  const count = truncateCandidates(w, params);
  return { ids: Array.from(cand.subarray(0, count)), weights: Array.from(expv.subarray(0, count)) };
}

/**
 * Log-probabilities under the distribution after bias and penalties, before temperature
 * and truncation (so they are meaningful for greedy requests too): the chosen token's,
 * and the topN best tokens'.
 */
export function logprobsOf(w: Float32Array, token: number, topN: number): { logprob: number; top?: TokenLogprob[] } {
  let lmax = -Infinity;
  for (let i = 0; i < w.length; i++) if (w[i] > lmax) lmax = w[i];
  let z = 0;
  for (let i = 0; i < w.length; i++) if (w[i] > -Infinity) z += Math.exp(w[i] - lmax);
  const logZ = lmax + Math.log(z);
  const out: { logprob: number; top?: TokenLogprob[] } = { logprob: w[token] - logZ };
  if (topN > 0) {
    const ids = new Int32Array(Math.min(topN, w.length));
    const n = topK(w, ids.length, ids);
    out.top = Array.from(ids.subarray(0, n), (id) => ({ token: id, logprob: w[id] - logZ }));
  }
  return out;
}
