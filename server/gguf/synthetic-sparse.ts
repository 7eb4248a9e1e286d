// `make-model --sparse`: a PowerInfer GGUF (magic PWRI) with predictors, whose FFN
// neurons fire like a real ReLU model's: a power law over neurons (a few hot neurons
// fire for most tokens, most are cold) with a chosen mean sparsity.
//
// How (details in synthetic-sparse-design.ts):
// - A per-neuron bias without bias tensors: the first 32 residual dims hold the same
//   value c in every token embedding and nothing ever writes there (attn_output and
//   ffn_down_t have zeros for them; attn_norm / output_norm zero them for attention and
//   the output head). The gate row's first 32-block reads them as a bias.
// - The gate's remaining input is the "S" half of the residual, which nothing writes
//   either: it holds the token embedding's random values (variance 1) in every layer.
//   Gate row i = sign_i * V[group_i] on S, an integer direction shared by its group
//   (k groups, k = (rank - 1) / 2), so z = V . (x (.) ffn_norm) is normal over tokens
//   with a spread s we compute exactly; bias_i = s * probit(p_i) makes neuron i fire
//   (gate > 0) for a fraction p_i of tokens. RMSNorm divides by a positive number and
//   does not change signs. p_i follows p_r ~ r^-alpha over shuffled popularity ranks,
//   scaled so the mean is 1 - sparsity.
// - bamboo (dReLU) also needs up > 0: its up rows get a +6 sigma bias from the same
//   CONST dims, so a neuron's activity is decided by its gate.
// - Exact predictor, shaped like PowerInfer's (rank n_embd / 4, in the file's weight
//   type): fc1 = [-e_0 (bias unit); +V_t; -V_t for each group] (ffn_norm is 1 on S), fc2
//   row i = [bias_i / (s_i |c|) at the bias unit; sign_i / s_i, -sign_i / s_i at its
//   group's units], so fc2 . relu(fc1 . p) = rms * gate_i / s_i: the gate's own value,
//   standardised. fc1 sits on the gate's integer lattice and each 32-block of an fc2 row
//   holds one value (predictorLayout), so every type stores them exactly up to its f16
//   block scale; what remains is the engine's activation quantisation (about 0.5% of s),
//   covered by the threshold -0.05: recall 100%, and the few extra neurons it predicts
//   compute to zero.
// - lowrank predictor: each gate row also gets a private random part carrying
//   `hiddenNoise` of its spread; the predictor (same weights as exact) cannot see it, as a
//   trained low-rank predictor misses part of a full-rank gate. Recall < 100%.
// Firing depends on the token, not on the context (the gate reads only CONST and S);
// attention and the FFN still transform the F half, which feeds the output head.
//
// tools/device-check/ has a C++ port that writes the same bytes (for machines without
// Node); test/gguf/make-model-native.test.ts compares the two, so change both together.

import { resolveGgmlType, type GgmlTypeInfo } from './constants.js';
import type { TypedValue } from './encoder.js';
import { streamedTensors, type PlannedTensor } from './tensor-stream.js';
import { ARCHS, WEIGHT_TYPES, baseMetadata, matrixType, outputType, resolveShape, type ModelArch, type ModelShape, type SyntheticModelOptions } from './synthetic-model.js';
import { CONST_DIMS, P_MAX, geometry, layerDesign, biasDigits, predictorLayout, type LayerDesign, type PredictorMode, type SparseGeometry, type SparseParams } from './synthetic-sparse-design.js';
import { syntheticVocab } from './synthetic-vocab.js';
import type { GgufSpec } from './writer.js';
import { Rng, toSeed64 } from '../sampling/rng.js';

export interface SparseModelOptions extends SyntheticModelOptions {
  /** Mean fraction of zero FFN neurons per token (default 0.9). */
  sparsity?: number;
  /** exact (recall 100%, default) or lowrank (misses a few neurons, like a trained predictor). */
  predictor?: PredictorMode;
  /** Predictor hidden size (rows of fc1); default n_embd / 4 (at least 17), as PowerInfer's. */
  predictorRank?: number;
  /** powerinfer.sparse_threshold; default: -0.05 exact, -0.25 for K-quant gates, -0.1 lowrank. */
  threshold?: number;
  /** Power-law exponent (default 1.5: the top 10% of neurons carry about two thirds of all activations). */
  alpha?: number;
  /** lowrank: the gate's part the predictor cannot see, as a share of its spread (default 0.1). */
  hiddenNoise?: number;
}

export interface ResolvedSparse extends SparseParams {
  threshold: number;
}

export function resolveSparseParams(o: SparseModelOptions, shape: ModelShape, gateType: string): ResolvedSparse {
  const sparsity = o.sparsity ?? 0.9;
  if (!(sparsity > 0 && sparsity < 1)) throw new RangeError(`--sparsity must be in (0, 1), got ${sparsity}`);
  // No neuron fires for more than P_MAX of the tokens, so the mean cannot reach 1 - sparsity.
  if (1 - sparsity >= P_MAX) throw new RangeError(`--sparsity must be above 0.03 (no neuron fires for more than 97% of tokens), got ${sparsity}`);
  const mode = o.predictor ?? 'exact';
  if (mode !== 'exact' && mode !== 'lowrank') throw new RangeError(`--predictor must be exact or lowrank, got ${JSON.stringify(mode)}`);
  // PowerInfer's published predictors: rank n_embd / 4 (512 at 1b, 1024 at 7b), stored in
  // the file's weight type; at 1b Q4_0 that is 2.2 MB a layer, a token's largest FFN read
  // after the active neurons.
  const rank = o.predictorRank ?? Math.max(17, shape.nEmbd / 4);
  if (!Number.isInteger(rank) || rank < 3 || rank > shape.nEmbd) {
    throw new RangeError(`--predictor-rank must be an integer in [3, n_embd = ${shape.nEmbd}], got ${rank}`);
  }
  const alpha = o.alpha ?? 1.5;
  if (!(alpha > 0 && alpha <= 4)) throw new RangeError(`alpha must be in (0, 4], got ${alpha}`);
  const hiddenNoise = o.hiddenNoise ?? 0.1;
  if (!(hiddenNoise >= 0 && hiddenNoise <= 1)) throw new RangeError(`hiddenNoise must be in [0, 1], got ${hiddenNoise}`);
  const kquant = gateType.endsWith('_k');
  const threshold = o.threshold ?? (mode === 'lowrank' ? -0.1 : kquant ? -0.25 : -0.05);
  if (!Number.isFinite(threshold)) throw new RangeError(`--threshold must be a number, got ${threshold}`);
  return { sparsity, mode, rank, alpha, hiddenNoise, threshold };
}

type RowFill = (rng: Rng, row: number, out: Float32Array) => void;

interface Planned extends PlannedTensor {
  layer: number;
  fill: RowFill;
}

const uniformStd = (rng: Rng, out: Float32Array, std: number) => rng.fillUniform(out, -std * Math.sqrt(3), std * Math.sqrt(3));

function sparseName(o: SparseModelOptions, p: ResolvedSparse): string {
  const family = o.arch === 'bamboo' ? 'Bamboo' : 'ReluLLaMA';
  return `synthetic-${family}-${o.size}-${o.type}-sparse${Math.round(p.sparsity * 100)}-${p.mode}`;
}

/** Validate options and describe the whole PWRI file (tensor data produced lazily, row by row). */
export async function sparseModelSpec(o: SparseModelOptions): Promise<GgufSpec> {
  if (!ARCHS.includes(o.arch)) throw new RangeError(`unknown arch ${JSON.stringify(o.arch)} (expected ${ARCHS.join(', ')})`);
  if (!(WEIGHT_TYPES as readonly string[]).includes(o.type)) {
    throw new RangeError(`unknown weight type ${JSON.stringify(o.type)} (expected ${WEIGHT_TYPES.join(', ')})`);
  }
  const seed = toSeed64(o.seed);
  const shape = resolveShape(o);
  const D = shape.nEmbd;
  const F = shape.nFf;
  const want = resolveGgmlType(o.type);
  const gateType = matrixType(want, D);
  const params = resolveSparseParams(o, shape, gateType.name);
  const g = geometry(D, F, gateType.name, params.rank);
  const vocab = syntheticVocab(shape.nVocab);
  const plan = planSparse(o.arch, shape, want, g, params, seed);

  const meta = baseMetadata(o, shape, vocab, sparseName(o, params));
  const f32 = (value: number): TypedValue => ({ type: 'f32', value });
  meta.push(
    ['powerinfer.sparse_threshold', f32(params.threshold)],
    // What the file was made to do, for tests and benchmarks (ignored by loaders).
    ['relu_serve.synthetic.sparsity', f32(params.sparsity)],
    ['relu_serve.synthetic.alpha', f32(params.alpha)],
    ['relu_serve.synthetic.predictor', { type: 'string', value: params.mode }],
  );

  const tensors = await streamedTensors(
    plan,
    seed,
    1 << 22,
    (p, rng, row0, nRows, chunk) => {
      const ne0 = p.dims[0];
      for (let i = 0; i < nRows; i++) p.fill(rng, row0 + i, chunk.subarray(i * ne0, (i + 1) * ne0));
    },
    o.onTensor,
  );
  return { magic: 'PWRI', version: 3, metadata: meta, tensors };
}

function planSparse(arch: ModelArch, s: ModelShape & { nVocab: number }, want: GgmlTypeInfo, g: SparseGeometry, p: ResolvedSparse, seed: bigint): Planned[] {
  const D = s.nEmbd;
  const F = s.nFf;
  const { f0, u, c, k, R } = g;
  const kvDim = (D / s.nHead) * s.nHeadKv;
  const f32 = resolveGgmlType('f32');
  const layout = predictorLayout(p.rank);
  const predType = (ne0: number) => (layout.fileType ? matrixType(want, ne0) : want.name === 'f32' ? f32 : resolveGgmlType('f16'));
  const out: Planned[] = [];
  const mat = (name: string, ne0: number, ne1: number, layer: number, fill: RowFill, type = matrixType(want, ne0)) =>
    out.push({ name, dims: [ne0, ne1], type, layer, fill });
  const vec = (name: string, layer: number, fill: RowFill) => out.push({ name, dims: [D], type: f32, layer, fill });

  // One layer's design at a time (tensors come layer by layer; predictors at the end).
  let cached: { layer: number; d: LayerDesign } | undefined;
  const design = (l: number): LayerDesign => {
    if (cached?.layer !== l) cached = { layer: l, d: layerDesign(g, p, seed, l) };
    return cached.d;
  };
  // Norm weights: 0 on CONST for attention and the head (they must not see the bias dims).
  const normNoConst: RowFill = (rng, _r, o) => {
    rng.fillUniform(o, 0.9, 1.1);
    o.fill(0, 0, CONST_DIMS);
  };
  // Attention reads CONST-free input and writes only F.
  const readNonConst: RowFill = (rng, _r, o) => {
    uniformStd(rng, o, 1 / Math.sqrt(D - CONST_DIMS));
    o.fill(0, 0, CONST_DIMS);
  };
  const writeF = (std: number): RowFill => (rng, r, o) => {
    if (r < f0) o.fill(0);
    else uniformStd(rng, o, std);
  };
  // FFN output: each token's FFN adds about 0.05 variance to an F dim.
  const nActive = Math.max(1, (1 - p.sparsity) * F);
  const hSq = arch === 'bamboo' ? 15 : 0.5;
  const downStd = Math.sqrt(0.05 / (nActive * hSq));
  const upBias = 6; // bamboo: up > 0 for all but ~1e-9 of tokens
  const digits = new Int32Array(CONST_DIMS - 1);

  out.push({
    name: 'token_embd.weight',
    dims: [D, s.nVocab],
    type: matrixType(want, D),
    layer: -1,
    fill: (rng, _r, o) => {
      rng.fillUniform(o, -Math.sqrt(3), Math.sqrt(3));
      o.fill(c, 0, CONST_DIMS);
    },
  });
  for (let l = 0; l < s.nLayer; l++) {
    const b = `blk.${l}.`;
    // Published PowerInfer files list a layer's tensors in this order.
    vec(`${b}attn_norm.weight`, l, normNoConst);
    mat(`${b}ffn_down_t.weight`, D, F, l, (rng, _r, o) => {
      uniformStd(rng, o, downStd);
      o.fill(0, 0, f0);
    });
    mat(`${b}ffn_gate.weight`, D, F, l, (rng, i, o) => {
      const d = design(l);
      o.fill(0);
      o[0] = -R * u;
      biasDigits(d.biasInt[i] + R, R, digits);
      for (let j = 1; j < CONST_DIMS; j++) o[j] = digits[j - 1] * u;
      const t = d.group[i];
      const sg = d.sign[i];
      const dir = d.dirs.subarray(t * g.nS, (t + 1) * g.nS);
      for (let j = 0; j < g.nS; j++) o[CONST_DIMS + j] = sg * dir[j] * u;
      if (p.mode === 'lowrank' && p.hiddenNoise > 0) {
        // Private part: unit spread under ffn_norm, scaled to hiddenNoise of the group's.
        const w = o.subarray(f0, f0 + g.nS); // borrow F space as scratch, cleared below
        uniformStd(rng, w, 1);
        let ss = 0;
        for (let j = 0; j < g.nS; j++) {
          const v = w[j] * d.ffnNorm[CONST_DIMS + j];
          ss += v * v; // not ** 2: a product is correctly rounded everywhere, pow need not be
        }
        const scale = (p.hiddenNoise * d.groupSpread[t]) / Math.sqrt(ss);
        for (let j = 0; j < g.nS; j++) o[CONST_DIMS + j] += w[j] * scale;
        w.fill(0);
      }
    });
    mat(`${b}ffn_up.weight`, D, F, l, (rng, _r, o) => {
      uniformStd(rng, o, 1 / Math.sqrt(D - CONST_DIMS));
      // bamboo: x[0..32) = c, so these weights add +upBias (times 1/rms) to every up value.
      o.fill(arch === 'bamboo' ? upBias / (CONST_DIMS * c) : 0, 0, CONST_DIMS);
    });
    vec(`${b}ffn_norm.weight`, l, (_rng, _r, o) => o.set(design(l).ffnNorm));
    mat(`${b}attn_k.weight`, D, kvDim, l, readNonConst);
    mat(`${b}attn_output.weight`, D, D, l, writeF(0.5 / Math.sqrt(D)));
    mat(`${b}attn_q.weight`, D, D, l, readNonConst);
    mat(`${b}attn_v.weight`, D, kvDim, l, readNonConst);
  }
  vec('output_norm.weight', -1, normNoConst);
  mat('output.weight', D, s.nVocab, -1, (rng, _r, o) => uniformStd(rng, o, 1 / Math.sqrt(D)), outputType(want, D));
  for (let l = 0; l < s.nLayer; l++) {
    mat(`blk.${l}.fc1.weight`, D, p.rank, l, (_rng, h, o) => {
      const d = design(l);
      o.fill(0);
      if (h === 0) {
        o[0] = -1; // relu(-c) = |c|: a constant unit carrying the biases
        return;
      }
      const t = h - layout.gap - (h >= layout.gap + layout.half ? layout.half : 0);
      if (h < layout.gap || t >= k) return; // an unused unit: a zero row
      const sg = h >= layout.gap + layout.half ? -1 : 1;
      for (let j = 0; j < g.nS; j++) o[CONST_DIMS + j] = sg * d.dirs[t * g.nS + j] * u * d.ffnNorm[CONST_DIMS + j];
    }, predType(D));
    mat(`blk.${l}.fc2.weight`, p.rank, F, l, (_rng, i, o) => {
      const d = design(l);
      o.fill(0);
      const t = d.group[i];
      const inv = 1 / d.spread[i];
      o[layout.gap + t] = d.sign[i] * inv;
      o[layout.gap + layout.half + t] = -d.sign[i] * inv;
      o[0] = -u * d.biasInt[i] * inv; // times |c| = -c: u * c * biasInt / s_i
    }, predType(p.rank));
  }
  return out;
}
