// Deterministic synthetic data for the profiler tests: a seeded RNG and power-law
// activation counts shaped like those measured on ReLU models (a few hot neurons, a long
// cold tail).

import type { ModelDescription, TensorDesc } from '../../server/profiler/model-identity.js';

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

const TYPE_IDS: Record<string, [number, number, number]> = {
  // name: [ggml id, block size, bytes per block]
  f32: [0, 1, 4],
  f16: [1, 1, 2],
  q4_0: [2, 32, 18],
  q8_0: [8, 32, 34],
  q4_k: [12, 256, 144],
  q6_k: [14, 256, 210],
};

function tensor(name: string, typeName: string, shape: number[]): TensorDesc {
  const [type, block, size] = TYPE_IDS[typeName];
  const rows = shape.slice(1).reduce((a, b) => a * b, 1);
  return { name, type, typeName, shape, bytes: (shape[0] / block) * size * rows };
}

/**
 * A llama-shaped model description (no weights): `ffnTypes(l)` gives the types of layer
 * l's gate, up and down matrices; `powerinfer` adds predictors and uses ffn_down_t.
 */
export function syntheticModel(opts: {
  nLayer: number;
  nFf: number;
  nEmbd: number;
  nHead?: number;
  nHeadKv?: number;
  nVocab?: number;
  name?: string;
  ffnTypes?: (l: number) => [string, string, string];
  powerinfer?: boolean;
  tiedOutput?: boolean;
}): ModelDescription {
  const { nLayer, nFf, nEmbd } = opts;
  const nHead = opts.nHead ?? 4;
  const nHeadKv = opts.nHeadKv ?? nHead;
  const nVocab = opts.nVocab ?? 256;
  const kvDim = (nEmbd / nHead) * nHeadKv;
  const tensors: TensorDesc[] = [tensor('token_embd.weight', 'f16', [nEmbd, nVocab])];
  for (let l = 0; l < nLayer; l++) {
    const [g, u, d] = opts.ffnTypes?.(l) ?? ['f16', 'f16', 'f16'];
    tensors.push(
      tensor(`blk.${l}.attn_norm.weight`, 'f32', [nEmbd]),
      tensor(`blk.${l}.attn_q.weight`, 'f16', [nEmbd, nEmbd]),
      tensor(`blk.${l}.attn_k.weight`, 'f16', [nEmbd, kvDim]),
      tensor(`blk.${l}.attn_v.weight`, 'f16', [nEmbd, kvDim]),
      tensor(`blk.${l}.attn_output.weight`, 'f16', [nEmbd, nEmbd]),
      tensor(`blk.${l}.ffn_norm.weight`, 'f32', [nEmbd]),
      tensor(`blk.${l}.ffn_gate.weight`, g, [nEmbd, nFf]),
      tensor(`blk.${l}.ffn_up.weight`, u, [nEmbd, nFf]),
    );
    if (opts.powerinfer) {
      tensors.push(
        tensor(`blk.${l}.ffn_down_t.weight`, d, [nEmbd, nFf]),
        tensor(`blk.${l}.fc1.weight`, 'f16', [nEmbd, 64]),
        tensor(`blk.${l}.fc2.weight`, 'f16', [64, nFf]),
      );
    } else {
      tensors.push(tensor(`blk.${l}.ffn_down.weight`, d, [nFf, nEmbd]));
    }
  }
  tensors.push(tensor('output_norm.weight', 'f32', [nEmbd]));
  if (!opts.tiedOutput) tensors.push(tensor('output.weight', 'f16', [nEmbd, nVocab]));
  return { name: opts.name ?? 'synthetic', arch: 'llama', nLayer, nFf, nEmbd, nHead, nHeadKv, nVocab, tensors };
}
