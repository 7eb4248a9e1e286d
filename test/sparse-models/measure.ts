// Measuring a sparse model: which FFN neurons the engine finds active for each token
// (its activation counting on the dense path, one token per decode), and which ones the
// file's predictor selects (computed here from the file's fc1/fc2 weights).
//
// The predictor reads p, the residual entering the FFN. In files from `make-model
// --sparse` nothing writes the dims the predictor reads (CONST and S; see
// server/gguf/synthetic-sparse-design.ts), so p there equals the token's embedding row,
// which lets this module compute the predictor without running the model.
import { open } from 'node:fs/promises';
import { native } from '../../server/engine/binding.js';
import { Model, sequenceBatch } from '../../server/engine/engine.js';
import { readGgufHeader, type GgufHeader } from '../../server/gguf/header-reader.js';
import { ggmlTypeById, tensorByteSize } from '../../server/gguf/constants.js';

/** A tensor of the file as f32 rows (dequantised by the addon's kernels). */
export async function readTensorF32(path: string, h: GgufHeader, name: string, rows?: number[]): Promise<{ ne0: number; ne1: number; data: Float32Array }> {
  const t = h.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  const type = ggmlTypeById(t.typeId)!;
  const [ne0, ne1 = 1] = t.dims;
  const rowBytes = Number(tensorByteSize([ne0], type));
  const want = rows ?? Array.from({ length: ne1 }, (_, i) => i);
  const out = new Float32Array(want.length * ne0);
  const fh = await open(path, 'r');
  try {
    if (!rows) {
      // The whole tensor: one read, one dequantisation (rows are whole blocks, so this is
      // row by row's result; a read per row made the sparse-model tests I/O-bound).
      const buf = Buffer.alloc(rowBytes * ne1);
      await fh.read(buf, 0, buf.length, h.dataOffset + Number(t.offset));
      out.set(native.kernels.dequantize(type.id, buf, ne0 * ne1));
      return { ne0, ne1, data: out };
    }
    const buf = Buffer.alloc(rowBytes);
    for (let i = 0; i < want.length; i++) {
      await fh.read(buf, 0, rowBytes, h.dataOffset + Number(t.offset) + want[i] * rowBytes);
      out.set(native.kernels.dequantize(type.id, buf, ne0), i * ne0);
    }
  } finally {
    await fh.close();
  }
  return { ne0, ne1: want.length, data: out };
}

/** Per token (outer) and layer (inner): the set of neuron ids, as sorted Int32Arrays. */
export type ActiveSets = Int32Array[][];

/** The engine's own predictor tally (its predictor run on the true FFN inputs while counting). */
export const engineTally = { tp: 0, fp: 0, fn: 0 };

/**
 * Active neurons per token and layer, as the engine's dense path finds them. Adds the
 * engine's predictor tally over these tokens to `engineTally` (reset it first).
 */
export async function engineActiveSets(model: Model, tokens: number[]): Promise<ActiveSets> {
  const ctx = await model.createContext({ nSeq: 1, nCtx: tokens.length + 1, threads: 2 });
  try {
    ctx.setActivationCounting(true);
    const sets: ActiveSets = [];
    for (let i = 0; i < tokens.length; i++) {
      ctx.resetActivationCounts();
      await ctx.decode(sequenceBatch([tokens[i]], 0, i));
      const counts = ctx.activationCounts();
      for (const q of counts.predictor ?? []) {
        engineTally.tp += q.truePositive;
        engineTally.fp += q.falsePositive;
        engineTally.fn += q.falseNegative;
      }
      sets.push(counts.layers.map((c) => {
        const ids: number[] = [];
        for (let n = 0; n < c.length; n++) if (c[n] !== 0) ids.push(n);
        return Int32Array.from(ids);
      }));
    }
    return sets;
  } finally {
    ctx.dispose();
  }
}

/**
 * Neurons the file's predictor selects (logit >= threshold) per token and layer, with
 * p = the token's embedding row (valid for make-model --sparse files, see above).
 */
export async function predictedSets(path: string, tokens: number[], threshold?: number): Promise<ActiveSets> {
  const h = await readGgufHeader(path);
  const thr = threshold ?? Number(h.metadata.get('powerinfer.sparse_threshold')?.value ?? 0);
  const arch = String(h.metadata.get('general.architecture')!.value);
  const nLayer = Number(h.metadata.get(`${arch}.block_count`)!.value);
  const distinct = [...new Set(tokens)];
  const emb = await readTensorF32(path, h, 'token_embd.weight', distinct);
  const row = new Map(distinct.map((t, i) => [t, emb.data.subarray(i * emb.ne0, (i + 1) * emb.ne0)]));
  const sets: ActiveSets = tokens.map(() => []);
  for (let l = 0; l < nLayer; l++) {
    const fc1 = await readTensorF32(path, h, `blk.${l}.fc1.weight`);
    const fc2 = await readTensorF32(path, h, `blk.${l}.fc2.weight`);
    const r = fc1.ne1;
    const hid = new Float64Array(r);
    tokens.forEach((tok, ti) => {
      const p = row.get(tok)!;
      // Offsets, not a subarray per row: these loops are most of the sparse tests' time.
      const w1 = fc1.data;
      const w2 = fc2.data;
      for (let j = 0, o = 0; j < r; j++, o += fc1.ne0) {
        let s = 0;
        for (let d = 0; d < fc1.ne0; d++) s += w1[o + d] * p[d];
        hid[j] = s > 0 ? s : 0;
      }
      const ids: number[] = [];
      for (let n = 0, o = 0; n < fc2.ne1; n++, o += r) {
        let s = 0;
        for (let j = 0; j < r; j++) s += w2[o + j] * hid[j];
        if (s >= thr) ids.push(n);
      }
      sets[ti][l] = Int32Array.from(ids);
    });
  }
  return sets;
}

export interface SparsityReport {
  /** Mean over tokens and layers of the fraction of zero neurons. */
  sparsity: number;
  /** Share of all activations that the top 10% of neurons (by count, per layer) account for. */
  top10Share: number;
  /** Fraction of neurons that never fired. */
  neverFired: number;
  /** Least and most active fraction of one token's neurons (mean over layers). */
  tokenActiveMin: number;
  tokenActiveMax: number;
}

export function sparsityReport(active: ActiveSets, nFf: number): SparsityReport {
  const nLayer = active[0].length;
  let activeSum = 0;
  let top = 0;
  let never = 0;
  for (let l = 0; l < nLayer; l++) {
    const counts = new Float64Array(nFf);
    for (const tok of active) for (const n of tok[l]) counts[n]++;
    const sorted = [...counts].sort((a, b) => b - a);
    const total = sorted.reduce((a, b) => a + b, 0);
    activeSum += total;
    const k = Math.ceil(nFf / 10);
    top += total > 0 ? sorted.slice(0, k).reduce((a, b) => a + b, 0) / total : 0;
    never += sorted.filter((c) => c === 0).length / nFf;
  }
  const perToken = active.map((tok) => tok.reduce((a, s) => a + s.length, 0) / (nLayer * nFf));
  return {
    tokenActiveMin: Math.min(...perToken),
    tokenActiveMax: Math.max(...perToken),
    sparsity: 1 - activeSum / (active.length * nLayer * nFf),
    top10Share: top / nLayer,
    neverFired: never / nLayer,
  };
}

export interface PredictorQuality {
  tp: number;
  fp: number;
  fn: number;
  recall: number;
  precision: number;
}

export function predictorQuality(truth: ActiveSets, predicted: ActiveSets): PredictorQuality {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  truth.forEach((tok, ti) =>
    tok.forEach((act, l) => {
      const pred = new Set(predicted[ti][l]);
      let hit = 0;
      for (const n of act) if (pred.has(n)) hit++;
      tp += hit;
      fn += act.length - hit;
      fp += pred.size - hit;
    }),
  );
  return { tp, fp, fn, recall: tp / Math.max(1, tp + fn), precision: tp / Math.max(1, tp + fp) };
}

/** Deterministic varied token ids in [3, nVocab) (no BOS/EOS/UNK). */
export function variedTokens(n: number, nVocab: number, seed = 1): number[] {
  let x = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out.push(3 + (x % (nVocab - 3)));
  }
  return out;
}
