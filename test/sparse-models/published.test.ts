// Small files that follow the conventions of the published PowerInfer GGUF models, as
// read from SJTU-IPADS/PowerInfer (convert-hf-to-powerinfer-gguf.py, gguf-py constants)
// and from a published file's loader listing (prosparse-llama-2-7b.gguf: 17 keys, 355
// tensors = 32 x 11 + 3):
// - magic PWRI, GGUF v3 otherwise; general.architecture llama or bamboo;
// - per layer attn_norm, ffn_down_t {n_embd, n_ff} (ffn_down absent), ffn_gate, ffn_up,
//   ffn_norm, attn_k, attn_output, attn_q, attn_v, and the predictor blk.N.fc1.weight
//   {n_embd, r} and blk.N.fc2.weight {r, n_ff} (no biases), listed after the model;
// - F16 files: 2-D weights F16, 1-D F32, predictors F16; Q4_0 files: weights Q4_0,
//   output Q6_K, predictors F16 (ProSparse's listing: fc1 f16 {4096, 1024});
// - powerinfer.sparse_threshold (f32) only when the predictor's config had one;
// - the converter names llama models "Llama" and sets context_length 2048.
// The dimensions are small, the predictor rank differs per layer (the format allows it),
// and the weights are random: these check loading, not quality.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model, sequenceBatch } from '../../server/engine/engine.js';
import { LLAMA_FILE_TYPE, resolveGgmlType } from '../../server/gguf/constants.js';
import type { TypedValue } from '../../server/gguf/encoder.js';
import { quantizerFor } from '../../server/gguf/quantize.js';
import { syntheticVocab } from '../../server/gguf/synthetic-vocab.js';
import { writeGguf, type TensorSpec } from '../../server/gguf/writer.js';
import { Rng } from '../../server/sampling/rng.js';
import { tokenizerMetadata } from '../../server/gguf/synthetic-model.js';
import { relErr } from '../engine/compare.js';

interface Published {
  /** What it stands for. */
  model: string;
  arch: 'llama' | 'bamboo';
  name: string;
  type: 'f16' | 'q4_0';
  nCtx: number;
  nHead: number;
  nHeadKv: number;
  ropeBase: number;
  /** undefined: no powerinfer.sparse_threshold key. */
  threshold?: number;
  /** Predictor rank of each layer. */
  ranks: number[];
}

const D = 256; // K-quant rows (the Q6_K output) need 256
const FF = 512;
const NV = 300;

const PUBLISHED: Published[] = [
  { model: 'ReluLLaMA-7B (F16)', arch: 'llama', name: 'Llama', type: 'f16', nCtx: 2048, nHead: 8, nHeadKv: 8, ropeBase: 10000, ranks: [64, 48] },
  { model: 'ReluLLaMA-13B (Q4_0)', arch: 'llama', name: 'Llama', type: 'q4_0', nCtx: 2048, nHead: 8, nHeadKv: 8, ropeBase: 10000, threshold: 0, ranks: [32, 64] },
  { model: 'ProSparse-LLaMA-2-7B', arch: 'llama', name: 'prosparse-llama-2-7b', type: 'f16', nCtx: 4096, nHead: 8, nHeadKv: 8, ropeBase: 10000, threshold: 0, ranks: [64, 64] },
  { model: 'Bamboo-7B (Q4_0)', arch: 'bamboo', name: 'Bamboo', type: 'q4_0', nCtx: 32768, nHead: 8, nHeadKv: 2, ropeBase: 10000, threshold: 0, ranks: [96, 40] },
];

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-published-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function writePublished(p: Published): Promise<string> {
  const a = p.arch;
  const nLayer = p.ranks.length;
  const vocab = syntheticVocab(NV);
  const u32 = (value: number): TypedValue => ({ type: 'u32', value });
  const f32v = (value: number): TypedValue => ({ type: 'f32', value });
  const meta: [string, TypedValue][] = [
    ['general.architecture', { type: 'string', value: a }],
    ['general.name', { type: 'string', value: p.name }],
    [`${a}.context_length`, u32(p.nCtx)],
    [`${a}.embedding_length`, u32(D)],
    [`${a}.block_count`, u32(nLayer)],
    [`${a}.feed_forward_length`, u32(FF)],
    [`${a}.rope.dimension_count`, u32(D / p.nHead)],
    [`${a}.attention.head_count`, u32(p.nHead)],
    [`${a}.attention.head_count_kv`, u32(p.nHeadKv)],
    [`${a}.attention.layer_norm_rms_epsilon`, f32v(1e-6)],
    [`${a}.rope.freq_base`, f32v(p.ropeBase)],
    ['general.file_type', u32(LLAMA_FILE_TYPE[p.type])],
  ];
  if (p.threshold !== undefined) meta.push(['powerinfer.sparse_threshold', f32v(p.threshold)]);
  meta.push(...tokenizerMetadata(vocab));
  if (p.type === 'q4_0') meta.push(['general.quantization_version', u32(2)]);

  const rng = new Rng(42, p.model.length);
  const tensors: TensorSpec[] = [];
  const add = async (name: string, dims: number[], type: string, lo: number, hi: number) => {
    const x = new Float32Array(dims.reduce((s, d) => s * d, 1));
    rng.fillUniform(x, lo, hi);
    const q = await quantizerFor(resolveGgmlType(type));
    tensors.push({ name, dims, type, data: Uint8Array.prototype.slice.call(q(x)) });
  };
  const w = (fanIn: number) => Math.sqrt(3 / fanIn);
  const kv = (D / p.nHead) * p.nHeadKv;
  await add('token_embd.weight', [D, NV], p.type, -1, 1);
  for (let l = 0; l < nLayer; l++) {
    const b = `blk.${l}.`;
    await add(`${b}attn_norm.weight`, [D], 'f32', 0.9, 1.1);
    await add(`${b}ffn_down_t.weight`, [D, FF], p.type, -w(FF), w(FF));
    await add(`${b}ffn_gate.weight`, [D, FF], p.type, -w(D), w(D));
    await add(`${b}ffn_up.weight`, [D, FF], p.type, -w(D), w(D));
    await add(`${b}ffn_norm.weight`, [D], 'f32', 0.9, 1.1);
    await add(`${b}attn_k.weight`, [D, kv], p.type, -w(D), w(D));
    await add(`${b}attn_output.weight`, [D, D], p.type, -w(D), w(D));
    await add(`${b}attn_q.weight`, [D, D], p.type, -w(D), w(D));
    await add(`${b}attn_v.weight`, [D, kv], p.type, -w(D), w(D));
  }
  await add('output_norm.weight', [D], 'f32', 0.9, 1.1);
  await add('output.weight', [D, NV], p.type === 'q4_0' ? 'q6_k' : 'f16', -w(D), w(D));
  for (let l = 0; l < nLayer; l++) {
    await add(`blk.${l}.fc1.weight`, [D, p.ranks[l]], 'f16', -w(D), w(D));
    await add(`blk.${l}.fc2.weight`, [p.ranks[l], FF], 'f16', -w(p.ranks[l]), w(p.ranks[l]));
  }
  const path = join(dir, `${p.model.replace(/[^A-Za-z0-9]+/g, '-')}.powerinfer.gguf`);
  await writeGguf(path, { magic: 'PWRI', version: 3, metadata: meta, tensors });
  return path;
}

for (const p of PUBLISHED) {
  test(`${p.model}: loads as published and decodes finite logits`, async () => {
    const m = await Model.load(await writePublished(p));
    try {
      assert.equal(m.info.isPowerInfer, true);
      assert.equal(m.info.arch, p.arch);
      if (p.arch === 'bamboo') assert.deepEqual([m.info.ffnActivation, m.info.ffnActivationFrom], ['drelu', 'architecture']);
      else assert.deepEqual([m.info.ffnActivation, m.info.ffnActivationFrom], ['relu_glu', 'powerinfer magic']);
      assert.equal(m.info.nFf, FF);
      assert.equal(m.info.nHeadKv, p.nHeadKv);
      const t = new Map(m.tensors.map((x) => [x.name, x]));
      assert.equal(m.tensors.length, 3 + 11 * p.ranks.length);
      assert.equal(t.has('blk.0.ffn_down.weight'), false);
      p.ranks.forEach((r, l) => {
        assert.deepEqual(t.get(`blk.${l}.fc1.weight`)!.shape, [D, r]);
        assert.deepEqual(t.get(`blk.${l}.fc2.weight`)!.shape, [r, FF]);
        assert.equal(t.get(`blk.${l}.fc1.weight`)!.typeName, 'f16');
        assert.deepEqual(t.get(`blk.${l}.ffn_down_t.weight`)!.shape, [D, FF]);
      });
      assert.equal(t.get('blk.0.ffn_gate.weight')!.typeName, p.type);
      if (p.type === 'q4_0') assert.equal(t.get('output.weight')!.typeName, 'q6_K');
      assert.equal(m.metadata.get('powerinfer.sparse_threshold'), p.threshold);
      const ctx = await m.createContext({ nSeq: 1, nCtx: 16 });
      const logits = await ctx.decode(sequenceBatch([1, 17, 42, 99, 7], 0, 0, true));
      ctx.dispose();
      assert.equal(logits.length, 5 * NV);
      assert.ok(logits.every(Number.isFinite));
      // This file's predictors are random, so predictor mode has no exact twin; dense mode
      // on the published layout (ffn_down_t, the file's types) must equal the reference.
      const dense = await m.createContext({ nSeq: 1, nCtx: 16, ffnMode: 'dense' });
      const got = await dense.decode(sequenceBatch([1, 17, 42, 99, 7], 0, 0, true));
      dense.dispose();
      const ref = await m.createContext({ nSeq: 1, nCtx: 16, backend: 'ref' });
      const want = await ref.decode(sequenceBatch([1, 17, 42, 99, 7], 0, 0, true));
      ref.dispose();
      const e = relErr(got, want);
      assert.ok(e < (p.type === 'q4_0' ? 5e-2 : 1e-4), `dense vs reference: ${e}`);
    } finally {
      m.dispose();
    }
  });
}
