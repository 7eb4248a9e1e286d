// Writes a model with trained predictors in PowerInfer's format
// (shared/docs/powerinfer-gguf.md): magic PWRI, every tensor of the input model except
// ffn_down (replaced by ffn_down_t, its transpose: row i is neuron i's output vector) and
// any old predictors, new blk.N.fc1.weight {n_embd, r} and blk.N.fc2.weight {r, n_ff},
// and powerinfer.sparse_threshold. Tensor data is read from the input only when written.
// Two things PowerInfer's loader needs that an input may lack (test/training/
// powerinfer-conformance.ts): its ggml has no bf16 type, so bf16 tensors are written as
// f16 (what PowerInfer's converter writes); and its sparse loader requires output.weight,
// so a model that ties its output to token_embd gets a copy of the embedding there.

import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { readGgufHeader, type GgufHeader, type ReadMetaValue } from '../gguf/header-reader.js';
import { LLAMA_FILE_TYPE, resolveGgmlType, tensorByteSize, type GgmlTypeInfo } from '../gguf/constants.js';
import type { TypedValue } from '../gguf/encoder.js';
import { writeGguf, type TensorSpec } from '../gguf/writer.js';
import { bf16ToFp32, encodeF16, fp16ToFp32 } from '../gguf/float16.js';
import { quantizerFor } from '../gguf/quantize.js';

export interface LayerPredictor {
  rank: number;
  /** rank x nEmbd, row-major (ggml ne {nEmbd, rank}). */
  fc1: Float32Array;
  /** nFf x rank, row-major (ggml ne {rank, nFf}). */
  fc2: Float32Array;
}

/**
 * The type PowerInfer's quantiser would give fc1/fc2 in a model of weight type `weight`:
 * the model's own block type when the rank fills whole blocks (fc2's rows are rank long),
 * else f16; f32 files keep f32.
 */
export function predictorType(weight: GgmlTypeInfo, rank: number, nEmbd: number): GgmlTypeInfo {
  if (weight.name === 'f32') return weight;
  if (weight.blockSize > 1 && rank % weight.blockSize === 0 && nEmbd % weight.blockSize === 0) return weight;
  return resolveGgmlType('f16');
}

/** Floats as they come back from `type` (what the engine will compute with). */
export async function roundTrip(type: GgmlTypeInfo, v: Float32Array): Promise<Float32Array> {
  if (type.name === 'f32') return Float32Array.from(v);
  if (type.name === 'f16') {
    const q = await quantizerFor(type);
    const b = q(v);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const out = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = fp16ToFp32(dv.getUint16(2 * i, true));
    return out;
  }
  const { native } = await import('../engine/binding.js');
  const q = native.kernels.quantize(type.id, v);
  return native.kernels.dequantize(type.id, new Uint8Array(q.buffer, q.byteOffset, q.byteLength), v.length);
}

function metaToTyped(m: ReadMetaValue): TypedValue {
  if (m.type === 'array') return { type: 'array', elemType: m.elemType, value: m.value } as unknown as TypedValue;
  return { type: m.type, value: m.value } as unknown as TypedValue;
}

/** The model's matrix weight type: that of blk.0.ffn_gate (the FFN is what predictors serve). */
export function weightTypeOf(h: GgufHeader): GgmlTypeInfo {
  const t = h.tensors.find((x) => x.name === 'blk.0.ffn_gate.weight') ?? h.tensors.find((x) => x.dims.length === 2);
  if (!t) throw new Error('the model has no matrices');
  return resolveGgmlType(t.typeId);
}

async function toFloats(type: GgmlTypeInfo, bytes: Uint8Array, n: number): Promise<Float32Array> {
  if (type.name === 'f32') return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 4 * n));
  if (type.name === 'f16' || type.name === 'bf16') {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(n);
    const conv = type.name === 'f16' ? fp16ToFp32 : bf16ToFp32;
    for (let i = 0; i < n; i++) out[i] = conv(dv.getUint16(2 * i, true));
    return out;
  }
  const { native } = await import('../engine/binding.js');
  return native.kernels.dequantize(type.id, bytes, n);
}

/** The tensors PowerInfer's sparse loader (llm_load_sparse_model_tensors) creates for llama / bamboo. */
const POWERINFER_TENSOR =
  /^(token_embd|output_norm|output|blk\.\d+\.(attn_norm|attn_q|attn_k|attn_v|attn_output|ffn_norm|ffn_gate|ffn_up|ffn_down_t|fc1|fc2))\.weight$/;

export interface WritePowerInferOptions {
  input: string;
  output: string;
  predictors: LayerPredictor[];
  threshold: number;
  /** Notes for the user: ffn_down requantised after transposing (lossy for block types); tensors PowerInfer would refuse. */
  onNote?: (s: string) => void;
}

export async function writePowerInferModel(o: WritePowerInferOptions): Promise<{ bytes: number; predictorBytes: number; ffnBytes: number }> {
  const h = await readGgufHeader(o.input);
  const arch = h.metadata.get('general.architecture')?.value;
  if (typeof arch !== 'string') throw new Error(`${o.input}: general.architecture is missing`);
  const meta: [string, TypedValue][] = [];
  for (const [k, v] of h.metadata) {
    if (k === 'powerinfer.sparse_threshold') continue;
    // bf16 tensors are written as f16 (below): say so in the file type too (32 -> 1).
    if (k === 'general.file_type' && v.type === 'u32' && v.value === LLAMA_FILE_TYPE.bf16) meta.push([k, { type: 'u32', value: LLAMA_FILE_TYPE.f16 }]);
    else meta.push([k, metaToTyped(v)]);
  }
  meta.push(['powerinfer.sparse_threshold', { type: 'f32', value: o.threshold }]);

  const fd = openSync(o.input, 'r');
  const read = (i: number): Uint8Array => {
    const t = h.tensors[i];
    const n = Number(tensorByteSize(t.dims, resolveGgmlType(t.typeId)));
    const buf = new Uint8Array(n);
    const got = readSync(fd, buf, 0, n, h.dataOffset + Number(t.offset));
    if (got !== n) throw new Error(`${o.input}: tensor ${t.name} is truncated`);
    return buf;
  };
  let noted = false;
  let ffnBytes = 0;
  let predictorBytes = 0;
  try {
    const tensors: TensorSpec[] = [];
    const asF16 = async (i: number): Promise<Uint8Array> => {
      const b = read(i);
      const f = await toFloats(resolveGgmlType('bf16'), b, b.length / 2);
      // bf16 has f32's range: a weight beyond f16's would silently become infinite.
      if (f.some((v) => Math.abs(v) > 65504)) throw new Error(`${o.input}: tensor ${h.tensors[i].name} has bf16 values beyond f16's range; PowerInfer has no bf16 type to keep them in`);
      return encodeF16(f);
    };
    // What to store for input tensor i: bf16 becomes f16 (PowerInfer's ggml has no bf16).
    const copy = (name: string, i: number): TensorSpec => {
      const t = h.tensors[i];
      if (resolveGgmlType(t.typeId).name === 'bf16') return { name, dims: t.dims, type: 'f16', data: () => asF16(i) };
      return { name, dims: t.dims, type: t.typeId, data: () => read(i) };
    };
    h.tensors.forEach((t, i) => {
      if (/^blk\.\d+\.fc[12]\.weight$/.test(t.name)) return;
      const type = resolveGgmlType(t.typeId);
      if (/\.ffn_(gate|up|down|down_t)\.weight$/.test(t.name)) ffnBytes += Number(tensorByteSize(t.dims, type));
      const down = /^(blk\.\d+)\.ffn_down\.weight$/.exec(t.name);
      if (!down) {
        tensors.push(copy(t.name, i));
        return;
      }
      // ffn_down {n_ff, n_embd}: n_embd rows of n_ff. ffn_down_t {n_embd, n_ff}: n_ff rows of n_embd.
      const [nFf, nEmbd] = t.dims;
      const outType = type.name === 'bf16' || (type.blockSize > 1 && nEmbd % type.blockSize !== 0) ? resolveGgmlType('f16') : type;
      tensors.push({
        name: `${down[1]}.ffn_down_t.weight`,
        dims: [nEmbd, nFf],
        type: outType.id,
        data: async () => {
          const src = await toFloats(type, read(i), nFf * nEmbd);
          const tr = new Float32Array(nFf * nEmbd);
          for (let r = 0; r < nEmbd; r++) for (let c = 0; c < nFf; c++) tr[c * nEmbd + r] = src[r * nFf + c];
          if (type.blockSize > 1 && !noted) {
            noted = true;
            o.onNote?.(`ffn_down is ${type.name}: transposed through f32 and requantised (PowerInfer's converter transposes before quantising)`);
          }
          const q = await quantizerFor(outType);
          return Uint8Array.from(q(tr));
        },
      });
    });
    const embd = h.tensors.findIndex((t) => t.name === 'token_embd.weight');
    if (embd >= 0 && !h.tensors.some((t) => t.name === 'output.weight')) tensors.push(copy('output.weight', embd));
    const weight = weightTypeOf(h);
    o.predictors.forEach((p, l) => {
      const nEmbd = p.fc1.length / p.rank;
      const nFf = p.fc2.length / p.rank;
      const pt = predictorType(weight, p.rank, nEmbd);
      predictorBytes += Number(tensorByteSize([nEmbd, p.rank], pt)) + Number(tensorByteSize([p.rank, nFf], pt));
      for (const [name, dims, v] of [
        [`blk.${l}.fc1.weight`, [nEmbd, p.rank], p.fc1],
        [`blk.${l}.fc2.weight`, [p.rank, nFf], p.fc2],
      ] as const) {
        tensors.push({ name, dims, type: pt.id, data: async () => Uint8Array.from((await quantizerFor(pt))(v)) });
      }
    });
    // PowerInfer's sparse loader creates a fixed set of tensors and fails on a file with
    // any other (its created count must equal the file's): say so rather than write a
    // file it will refuse without a word from us. (Our engine may still use them.)
    const extra = tensors.map((t) => t.name).filter((n) => !POWERINFER_TENSOR.test(n));
    if (extra.length) o.onNote?.(`PowerInfer's loader will refuse this file: it holds tensors its sparse loader does not create (${extra.join(', ')})`);
    await writeGguf(o.output, { magic: 'PWRI', version: 3, metadata: meta, tensors, alignment: h.alignment });
    return { bytes: statSync(o.output).size, predictorBytes, ffnBytes };
  } finally {
    closeSync(fd);
  }
}
