// Synthetic llama / bamboo models: real GGUF layout and metadata, seeded random weights.
// Same options -> byte-identical file. Tensors are generated one at a time, in chunks of
// rows, from a per-tensor random stream, so a 7B-shaped file never sits in memory.
//
// Weight scales keep activations sane through the layers: matrices are uniform with
// standard deviation 1/sqrt(fan_in) (fan_in = ne[0], the row length), so each product
// keeps the RMS of its (RMS-normed) input; the embedding has unit variance; norm weights
// are 1 +- 0.1.
//
// tools/device-check/ has a C++ port that writes the same bytes (for machines without
// Node); test/gguf/make-model-native.test.ts compares the two, so change both together.

import { LLAMA_FILE_TYPE, resolveGgmlType, type GgmlTypeInfo } from './constants.js';
import type { TypedValue } from './encoder.js';
import { streamedTensors, type PlannedTensor } from './tensor-stream.js';
import { syntheticVocab, loadFixtureVocab } from './synthetic-vocab.js';
import type { GgufSpec } from './writer.js';
import { toSeed64 } from '../sampling/rng.js';

export const SIZES = ['tiny', 'small', '1b', '7b'] as const;
export const ARCHS = ['llama', 'bamboo'] as const;
export const WEIGHT_TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k', 'q5_k', 'q6_k'] as const;
export type ModelSize = (typeof SIZES)[number];
export type ModelArch = (typeof ARCHS)[number];

export interface ModelShape {
  nEmbd: number;
  nFf: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  /** undefined: the fixture vocabulary's size. */
  nVocab: number | undefined;
  nCtx: number;
}

// 7b is Bamboo-7B's (Mistral-7B's) shape; 1b a scaled-down llama with the same GQA ratio.
export const SHAPES: Record<ModelSize, ModelShape> = {
  tiny: { nEmbd: 64, nFf: 192, nLayer: 2, nHead: 4, nHeadKv: 2, nVocab: undefined, nCtx: 2048 },
  small: { nEmbd: 256, nFf: 768, nLayer: 4, nHead: 8, nHeadKv: 4, nVocab: undefined, nCtx: 2048 },
  '1b': { nEmbd: 2048, nFf: 8192, nLayer: 16, nHead: 32, nHeadKv: 8, nVocab: 32000, nCtx: 4096 },
  '7b': { nEmbd: 4096, nFf: 14336, nLayer: 32, nHead: 32, nHeadKv: 8, nVocab: 32000, nCtx: 32768 },
};

export interface SyntheticModelOptions {
  arch: ModelArch;
  size: ModelSize;
  /** Weight type of the matrices: f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k. */
  type: string;
  seed: number | bigint;
  vocabSize?: number;
  /** llama only: name the model so loaders pick the ReLU-gated FFN (as for ReluLLaMA). */
  relu?: boolean;
  /** No output.weight: the output projection reuses token_embd. */
  tied?: boolean;
  chatTemplate?: string;
  /** Called after each tensor's data is produced. */
  onTensor?: (index: number, count: number, name: string) => void;
}

const RMS_EPS = 1e-5;
const ROPE_BASE = 10000;
const CHUNK_ELEMS = 1 << 22;

/**
 * The type a matrix with rows of `ne0` values gets when `want` is asked for. K-quants
 * need rows that are whole 256-value blocks; like llama.cpp's quantiser we fall back
 * for narrow rows (tiny models): to q8_0, or f16 when even 32 does not divide.
 */
export function matrixType(want: GgmlTypeInfo, ne0: number): GgmlTypeInfo {
  if (ne0 % want.blockSize === 0) return want;
  const q8 = resolveGgmlType('q8_0');
  return ne0 % q8.blockSize === 0 ? q8 : resolveGgmlType('f16');
}

/** output.weight's type: llama.cpp stores it as Q6_K in q4_0 / q4_k / q5_k files. */
export function outputType(want: GgmlTypeInfo, ne0: number): GgmlTypeInfo {
  if (want.name === 'q4_0' || want.name === 'q4_k' || want.name === 'q5_k') return matrixType(resolveGgmlType('q6_k'), ne0);
  return matrixType(want, ne0);
}

interface Planned extends PlannedTensor {
  /** Values uniform in [lo, hi). */
  lo: number;
  hi: number;
}

function planTensors(o: SyntheticModelOptions, s: ModelShape & { nVocab: number }, want: GgmlTypeInfo): Planned[] {
  const headDim = s.nEmbd / s.nHead;
  const kvDim = headDim * s.nHeadKv;
  const f32 = resolveGgmlType('f32');
  const out: Planned[] = [];
  const u = (fanIn: number) => Math.sqrt(3 / fanIn); // uniform half-width for std 1/sqrt(fan_in)
  const matrix = (name: string, ne0: number, ne1: number, type = matrixType(want, ne0)) =>
    out.push({ name, dims: [ne0, ne1], type, lo: -u(ne0), hi: u(ne0) });
  const norm = (name: string) => out.push({ name, dims: [s.nEmbd], type: f32, lo: 0.9, hi: 1.1 });

  out.push({
    name: 'token_embd.weight',
    dims: [s.nEmbd, s.nVocab],
    type: matrixType(want, s.nEmbd),
    lo: -Math.sqrt(3),
    hi: Math.sqrt(3),
  });
  for (let l = 0; l < s.nLayer; l++) {
    const b = `blk.${l}.`;
    norm(`${b}attn_norm.weight`);
    matrix(`${b}attn_q.weight`, s.nEmbd, s.nEmbd);
    matrix(`${b}attn_k.weight`, s.nEmbd, kvDim);
    matrix(`${b}attn_v.weight`, s.nEmbd, kvDim);
    matrix(`${b}attn_output.weight`, s.nEmbd, s.nEmbd);
    norm(`${b}ffn_norm.weight`);
    matrix(`${b}ffn_gate.weight`, s.nEmbd, s.nFf);
    matrix(`${b}ffn_up.weight`, s.nEmbd, s.nFf);
    matrix(`${b}ffn_down.weight`, s.nFf, s.nEmbd);
  }
  norm('output_norm.weight');
  if (!o.tied) matrix('output.weight', s.nEmbd, s.nVocab, outputType(want, s.nEmbd));
  return out;
}

export function modelName(o: SyntheticModelOptions): string {
  // The C++ loader recognises ReLU llama models by "relu" in general.name (as for
  // ReluLLaMA / ProSparse files), so the plain name must not contain it.
  const family = o.arch === 'bamboo' ? 'Bamboo' : o.relu ? 'ReluLLaMA' : 'LLaMA';
  return `synthetic-${family}-${o.size}-${o.type}`;
}

export function resolveShape(o: SyntheticModelOptions): ModelShape & { nVocab: number } {
  const base = SHAPES[o.size];
  if (!base) throw new RangeError(`unknown size ${JSON.stringify(o.size)} (expected ${SIZES.join(', ')})`);
  const nVocab = o.vocabSize ?? base.nVocab ?? loadFixtureVocab().pieces.length;
  return { ...base, nVocab };
}

/** A SentencePiece (llama) tokenizer's tables and special ids, as GGUF converters write them. */
export function tokenizerMetadata(vocab: ReturnType<typeof syntheticVocab>): [string, TypedValue][] {
  const u32 = (value: number): TypedValue => ({ type: 'u32', value });
  return [
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', elemType: 'string', value: vocab.pieces }],
    ['tokenizer.ggml.scores', { type: 'array', elemType: 'f32', value: vocab.scores }],
    ['tokenizer.ggml.token_type', { type: 'array', elemType: 'i32', value: vocab.types }],
    ['tokenizer.ggml.bos_token_id', u32(1)],
    ['tokenizer.ggml.eos_token_id', u32(2)],
    ['tokenizer.ggml.unknown_token_id', u32(0)],
  ];
}

/**
 * The llama-style metadata every synthetic model carries (hyper-parameters under the
 * architecture's prefix, tokenizer tables); the sparse writer adds its own keys.
 */
export function baseMetadata(
  o: Pick<SyntheticModelOptions, 'arch' | 'type' | 'chatTemplate'>,
  shape: ModelShape & { nVocab: number },
  vocab: ReturnType<typeof syntheticVocab>,
  name: string,
): [string, TypedValue][] {
  const want = resolveGgmlType(o.type);
  const a = o.arch;
  const u32 = (value: number): TypedValue => ({ type: 'u32', value });
  const f32 = (value: number): TypedValue => ({ type: 'f32', value });
  const meta: [string, TypedValue][] = [
    ['general.architecture', { type: 'string', value: a }],
    ['general.name', { type: 'string', value: name }],
    ['general.file_type', u32(LLAMA_FILE_TYPE[o.type])],
  ];
  if (want.blockSize > 1) meta.push(['general.quantization_version', u32(2)]);
  meta.push(
    [`${a}.vocab_size`, u32(shape.nVocab)],
    [`${a}.context_length`, u32(shape.nCtx)],
    [`${a}.embedding_length`, u32(shape.nEmbd)],
    [`${a}.feed_forward_length`, u32(shape.nFf)],
    [`${a}.block_count`, u32(shape.nLayer)],
    [`${a}.attention.head_count`, u32(shape.nHead)],
    [`${a}.attention.head_count_kv`, u32(shape.nHeadKv)],
    [`${a}.rope.freq_base`, f32(ROPE_BASE)],
    [`${a}.attention.layer_norm_rms_epsilon`, f32(RMS_EPS)],
    [`${a}.rope.dimension_count`, u32(shape.nEmbd / shape.nHead)],
    ...tokenizerMetadata(vocab),
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
    ['tokenizer.ggml.add_space_prefix', { type: 'bool', value: true }],
  );
  if (o.chatTemplate !== undefined) meta.push(['tokenizer.chat_template', { type: 'string', value: o.chatTemplate }]);
  return meta;
}

/** Validate options and describe the whole file (tensor data produced lazily). */
export async function syntheticModelSpec(o: SyntheticModelOptions): Promise<GgufSpec> {
  if (!ARCHS.includes(o.arch)) throw new RangeError(`unknown arch ${JSON.stringify(o.arch)} (expected ${ARCHS.join(', ')})`);
  if (!(WEIGHT_TYPES as readonly string[]).includes(o.type)) {
    throw new RangeError(`unknown weight type ${JSON.stringify(o.type)} (expected ${WEIGHT_TYPES.join(', ')})`);
  }
  const seed = toSeed64(o.seed);
  const shape = resolveShape(o);
  const vocab = syntheticVocab(shape.nVocab);
  const want = resolveGgmlType(o.type);
  const plan = planTensors(o, shape, want);
  const meta = baseMetadata(o, shape, vocab, modelName(o));
  const tensors = await streamedTensors(plan, seed, CHUNK_ELEMS, (p, rng, _row0, _nRows, chunk) => rng.fillUniform(chunk, p.lo, p.hi), o.onTensor);
  return { magic: 'GGUF', version: 3, metadata: meta, tensors };
}
