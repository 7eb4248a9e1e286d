// A minimal llama GGUF as a writer spec (f32 weights, 8-token vocabulary), for tests that
// need to break one thing at a time: each test edits a fresh copy.
import type { GgufSpec, TensorSpec } from '../../server/gguf/writer.js';
import type { TypedValue } from '../../server/gguf/encoder.js';

export const D = 32;
export const FF = 64;
export const VOCAB = 8;
export const KV = 16; // 1 KV head of head_dim 16 (2 query heads)

function f32(n: number, seed: number): Uint8Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = ((s >>> 0) / 2 ** 32 - 0.5) * 0.5;
  }
  return new Uint8Array(a.buffer);
}

export interface SpecParts {
  metadata: Map<string, TypedValue>;
  tensors: TensorSpec[];
}

export function tinyParts(arch = 'llama'): SpecParts {
  const m = new Map<string, TypedValue>([
    ['general.architecture', { type: 'string', value: arch }],
    ['general.name', { type: 'string', value: 'spec-test' }],
    [`${arch}.context_length`, { type: 'u32', value: 64 }],
    [`${arch}.embedding_length`, { type: 'u32', value: D }],
    [`${arch}.feed_forward_length`, { type: 'u32', value: FF }],
    [`${arch}.block_count`, { type: 'u32', value: 1 }],
    [`${arch}.attention.head_count`, { type: 'u32', value: 2 }],
    [`${arch}.attention.head_count_kv`, { type: 'u32', value: 1 }],
    [`${arch}.rope.freq_base`, { type: 'f32', value: 10000 }],
    [`${arch}.attention.layer_norm_rms_epsilon`, { type: 'f32', value: 1e-5 }],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', elemType: 'string', value: ['<unk>', '<s>', '</s>', '▁a', '▁b', 'c', 'd', 'e'] }],
  ]);
  let seed = 1;
  const t = (name: string, dims: number[], data?: Uint8Array): TensorSpec => ({
    name,
    dims,
    type: 'f32',
    data: data ?? f32(dims.reduce((a, b) => a * b, 1), seed++),
  });
  const ones = new Uint8Array(new Float32Array(D).fill(1).buffer);
  const tensors = [
    t('token_embd.weight', [D, VOCAB]),
    t('output_norm.weight', [D], ones),
    t('output.weight', [D, VOCAB]),
    t('blk.0.attn_norm.weight', [D], ones),
    t('blk.0.attn_q.weight', [D, D]),
    t('blk.0.attn_k.weight', [D, KV]),
    t('blk.0.attn_v.weight', [D, KV]),
    t('blk.0.attn_output.weight', [D, D]),
    t('blk.0.ffn_norm.weight', [D], ones),
    t('blk.0.ffn_gate.weight', [D, FF]),
    t('blk.0.ffn_up.weight', [D, FF]),
    t('blk.0.ffn_down.weight', [FF, D]),
  ];
  return { metadata: m, tensors };
}

export function toSpec(p: SpecParts, extra: Partial<GgufSpec> = {}): GgufSpec {
  return { metadata: [...p.metadata], tensors: p.tensors, ...extra };
}
