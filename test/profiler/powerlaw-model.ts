// A tiny llama-layout GGUF (f32 weights, ReLU-GLU FFN, byte-level SentencePiece vocab)
// whose FFN neurons fire with a designed power law, plus a direct dense run of its FFN in
// TypeScript to cross-check what the engine counts.
//
// Design: every token embedding has the same large value in dimension 0, so after RMS
// norm dimension 0 is a steady positive input. Gate row i gets weight b_i there (plus
// random weights elsewhere), which shifts neuron i's pre-activation and so sets how often
// relu(gate.x) > 0: b_i is chosen from the inverse normal CDF of the target rate
// p_i = 0.9 (r_i + 1)^-alpha, r_i a random rank. The attention output matrix is zero, so
// the FFN input of a token depends on the token alone, which keeps the reference simple
// while the engine still runs its full attention path.

import { writeGguf, type TensorSpec } from '../../server/gguf/writer.js';
import { seededRandom } from './synthetic.js';

export interface PowerLawModel {
  nLayer: number;
  nFf: number;
  nEmbd: number;
  nVocab: number;
  /** Designed firing probability of each neuron, per layer. */
  target: Float64Array[];
  emb: Float32Array; // [nVocab][nEmbd]
  ffnNorm: Float32Array[];
  gate: Float32Array[]; // [nFf][nEmbd]
  up: Float32Array[];
  down: Float32Array[]; // ggml ffn_down: ne {nFf, nEmbd}: row e holds nFf weights
}

const RMS_EPS = 1e-5;

function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** Inverse standard normal CDF by bisection on an erf approximation (test data only). */
function probit(p: number): number {
  const cdf = (x: number) => {
    const t = 1 / (1 + 0.3275911 * Math.abs(x / Math.SQRT2));
    const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-(x * x) / 2);
    return 0.5 * (1 + (x >= 0 ? y : -y));
  };
  let lo = -8;
  let hi = 8;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (cdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

export function buildPowerLawModel(o: { nLayer: number; nFf: number; nEmbd: number; alpha: number; seed: number }): PowerLawModel {
  const rand = seededRandom(o.seed);
  const { nLayer, nFf, nEmbd } = o;
  const nVocab = 259;
  const C = 4; // the steady dimension-0 value
  const emb = new Float32Array(nVocab * nEmbd);
  for (let t = 0; t < nVocab; t++) {
    emb[t * nEmbd] = C;
    for (let j = 1; j < nEmbd; j++) emb[t * nEmbd + j] = gaussian(rand);
  }
  // After RMS norm: dimension 0 is about C / sqrt((C^2 + nEmbd - 1) / nEmbd); the random
  // part of gate.x has standard deviation about sigma below.
  const rms = Math.sqrt((C * C + nEmbd - 1) / nEmbd);
  const x0 = C / rms;
  const wScale = 1 / Math.sqrt(nEmbd);
  const sigma = (wScale * Math.sqrt(nEmbd - 1)) / rms;
  const target: Float64Array[] = [];
  const gate: Float32Array[] = [];
  const up: Float32Array[] = [];
  const down: Float32Array[] = [];
  const ffnNorm: Float32Array[] = [];
  for (let l = 0; l < nLayer; l++) {
    const perm = Array.from({ length: nFf }, (_, i) => i);
    for (let i = nFf - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    const p = new Float64Array(nFf);
    const g = new Float32Array(nFf * nEmbd);
    const u = new Float32Array(nFf * nEmbd);
    for (let i = 0; i < nFf; i++) {
      p[perm[i]] = Math.min(0.95, 0.9 * Math.pow(i + 1, -o.alpha));
    }
    for (let i = 0; i < nFf; i++) {
      g[i * nEmbd] = (probit(p[i]) * sigma) / x0;
      for (let j = 1; j < nEmbd; j++) g[i * nEmbd + j] = wScale * gaussian(rand);
      for (let j = 0; j < nEmbd; j++) u[i * nEmbd + j] = wScale * gaussian(rand);
    }
    const d = new Float32Array(nEmbd * nFf);
    for (let k = 0; k < d.length; k++) d[k] = 0.02 * gaussian(rand);
    // Keep dimension 0 of the residual steady across layers.
    for (let i = 0; i < nFf; i++) d[i] = 0;
    target.push(p);
    gate.push(g);
    up.push(u);
    down.push(d);
    ffnNorm.push(new Float32Array(nEmbd).fill(1));
  }
  return { nLayer, nFf, nEmbd, nVocab, target, emb, ffnNorm, gate, up, down };
}

const f32 = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export async function writePowerLawModel(path: string, m: PowerLawModel, name = 'powerlaw-relu-tiny'): Promise<void> {
  const { nLayer, nFf, nEmbd, nVocab } = m;
  const nHead = 4;
  const rand = seededRandom(99);
  const randMat = (n: number, s: number) => Float32Array.from({ length: n }, () => s * gaussian(rand));
  const tensors: TensorSpec[] = [{ name: 'token_embd.weight', dims: [nEmbd, nVocab], type: 'f32', data: f32(m.emb) }];
  for (let l = 0; l < nLayer; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      { name: `${p}attn_norm.weight`, dims: [nEmbd], type: 'f32', data: f32(new Float32Array(nEmbd).fill(1)) },
      { name: `${p}attn_q.weight`, dims: [nEmbd, nEmbd], type: 'f32', data: f32(randMat(nEmbd * nEmbd, 0.1)) },
      { name: `${p}attn_k.weight`, dims: [nEmbd, nEmbd], type: 'f32', data: f32(randMat(nEmbd * nEmbd, 0.1)) },
      { name: `${p}attn_v.weight`, dims: [nEmbd, nEmbd], type: 'f32', data: f32(randMat(nEmbd * nEmbd, 0.1)) },
      { name: `${p}attn_output.weight`, dims: [nEmbd, nEmbd], type: 'f32', data: f32(new Float32Array(nEmbd * nEmbd)) },
      { name: `${p}ffn_norm.weight`, dims: [nEmbd], type: 'f32', data: f32(m.ffnNorm[l]) },
      { name: `${p}ffn_gate.weight`, dims: [nEmbd, nFf], type: 'f32', data: f32(m.gate[l]) },
      { name: `${p}ffn_up.weight`, dims: [nEmbd, nFf], type: 'f32', data: f32(m.up[l]) },
      { name: `${p}ffn_down.weight`, dims: [nFf, nEmbd], type: 'f32', data: f32(m.down[l]) },
    );
  }
  tensors.push(
    { name: 'output_norm.weight', dims: [nEmbd], type: 'f32', data: f32(new Float32Array(nEmbd).fill(1)) },
    { name: 'output.weight', dims: [nEmbd, nVocab], type: 'f32', data: f32(randMat(nEmbd * nVocab, 0.1)) },
  );
  const tokens = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)];
  const types = [2, 3, 3, ...new Array(256).fill(6)];
  await writeGguf(path, {
    metadata: [
      ['general.architecture', { type: 'string', value: 'llama' }],
      ['general.name', { type: 'string', value: name }],
      ['llama.block_count', { type: 'u32', value: nLayer }],
      ['llama.embedding_length', { type: 'u32', value: nEmbd }],
      ['llama.feed_forward_length', { type: 'u32', value: nFf }],
      ['llama.attention.head_count', { type: 'u32', value: nHead }],
      ['llama.attention.head_count_kv', { type: 'u32', value: nHead }],
      ['llama.context_length', { type: 'u32', value: 2048 }],
      ['llama.rope.freq_base', { type: 'f32', value: 10000 }],
      ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: RMS_EPS }],
      ['relu_serve.ffn_activation', { type: 'string', value: 'relu_glu' }],
      ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
      ['tokenizer.ggml.tokens', { type: 'array', elemType: 'string', value: tokens }],
      ['tokenizer.ggml.scores', { type: 'array', elemType: 'f32', value: new Array(tokens.length).fill(0) }],
      ['tokenizer.ggml.token_type', { type: 'array', elemType: 'i32', value: types }],
      ['tokenizer.ggml.bos_token_id', { type: 'u32', value: 1 }],
      ['tokenizer.ggml.eos_token_id', { type: 'u32', value: 2 }],
      ['tokenizer.ggml.unknown_token_id', { type: 'u32', value: 0 }],
    ],
    tensors,
  });
}

export interface DenseCounts {
  /** Neurons that certainly fired (pre-activation clearly positive and up.x clearly non-zero). */
  sure: Float64Array[];
  /** Neurons too close to zero to call, where float rounding order may decide. */
  unsure: Float64Array[];
}

/** Direct dense run of the FFN stack, token by token, in float64. */
export function denseCounts(m: PowerLawModel, tokens: ArrayLike<number>, margin = 1e-4): DenseCounts {
  const { nLayer, nFf, nEmbd } = m;
  const sure = Array.from({ length: nLayer }, () => new Float64Array(nFf));
  const unsure = Array.from({ length: nLayer }, () => new Float64Array(nFf));
  // The FFN input depends only on the token (attention output is zero): cache per token id.
  const perToken = new Map<number, { fire: Uint8Array[]; edge: Uint8Array[] }>();
  for (let n = 0; n < tokens.length; n++) {
    const tok = tokens[n];
    let r = perToken.get(tok);
    if (!r) {
      const x = Float64Array.from(m.emb.subarray(tok * nEmbd, (tok + 1) * nEmbd));
      const fire: Uint8Array[] = [];
      const edge: Uint8Array[] = [];
      const xn = new Float64Array(nEmbd);
      const h = new Float64Array(nFf);
      for (let l = 0; l < nLayer; l++) {
        let ss = 0;
        for (let j = 0; j < nEmbd; j++) ss += x[j] * x[j];
        const s = 1 / Math.sqrt(ss / nEmbd + RMS_EPS);
        for (let j = 0; j < nEmbd; j++) xn[j] = x[j] * s * m.ffnNorm[l][j];
        const f = new Uint8Array(nFf);
        const e = new Uint8Array(nFf);
        for (let i = 0; i < nFf; i++) {
          let g = 0;
          let u = 0;
          for (let j = 0; j < nEmbd; j++) {
            g += m.gate[l][i * nEmbd + j] * xn[j];
            u += m.up[l][i * nEmbd + j] * xn[j];
          }
          h[i] = Math.max(0, g) * u;
          if (Math.abs(g) < margin || (g > 0 && Math.abs(u) < margin)) e[i] = 1;
          else if (g > 0) f[i] = 1;
        }
        for (let eIdx = 0; eIdx < nEmbd; eIdx++) {
          let acc = 0;
          for (let i = 0; i < nFf; i++) acc += m.down[l][eIdx * nFf + i] * h[i];
          x[eIdx] += acc;
        }
        fire.push(f);
        edge.push(e);
      }
      r = { fire, edge };
      perToken.set(tok, r);
    }
    for (let l = 0; l < nLayer; l++) {
      for (let i = 0; i < nFf; i++) {
        sure[l][i] += r.fire[l][i];
        unsure[l][i] += r.edge[l][i];
      }
    }
  }
  return { sure, unsure };
}
