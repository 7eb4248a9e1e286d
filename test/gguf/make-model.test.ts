import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeModel } from '../../server/cli/make-model.js';
import { readGgufHeader, metadataValues } from '../../server/gguf/header-reader.js';
import { syntheticVocab, loadFixtureVocab, minVocabSize } from '../../server/gguf/synthetic-vocab.js';
import { fp16ToFp32 } from '../../server/gguf/float16.js';
import { resolveGgmlType, tensorByteSize } from '../../server/gguf/constants.js';
import { SpmTokenizer } from '../../server/tokenizer/spm.js';
import { relErr } from '../engine/compare.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rs-mm-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('tiny llama f16: shapes, types and metadata follow the llama GGUF conventions', () =>
  withDir(async (dir) => {
    const out = join(dir, 'tiny.gguf');
    await makeModel({ arch: 'llama', size: 'tiny', type: 'f16', seed: 3, out });
    const h = await readGgufHeader(out);
    const m = metadataValues(h);
    assert.equal(h.magic, 'GGUF');
    assert.equal(h.version, 3);
    assert.equal(m.get('general.architecture'), 'llama');
    assert.equal(m.get('general.file_type'), 1);
    assert.equal(m.get('llama.embedding_length'), 64);
    assert.equal(m.get('llama.feed_forward_length'), 192);
    assert.equal(m.get('llama.block_count'), 2);
    assert.equal(m.get('llama.attention.head_count'), 4);
    assert.equal(m.get('llama.attention.head_count_kv'), 2);
    assert.equal(m.get('llama.rope.dimension_count'), 16);
    assert.equal(m.get('llama.rope.freq_base'), 10000);
    assert.equal(m.get('llama.attention.layer_norm_rms_epsilon'), Math.fround(1e-5));
    assert.ok(!String(m.get('general.name')).toLowerCase().includes('relu'));
    const nVocab = loadFixtureVocab().pieces.length;
    const byName = new Map(h.tensors.map((t) => [t.name, t]));
    const expect = (name: string, dims: number[], type: string) => {
      const t = byName.get(name);
      assert.ok(t, `missing ${name}`);
      assert.deepEqual(t.dims, dims, name);
      assert.equal(t.typeName, type, name);
    };
    expect('token_embd.weight', [64, nVocab], 'f16');
    expect('output_norm.weight', [64], 'f32');
    expect('output.weight', [64, nVocab], 'f16');
    for (const l of [0, 1]) {
      expect(`blk.${l}.attn_norm.weight`, [64], 'f32');
      expect(`blk.${l}.attn_q.weight`, [64, 64], 'f16');
      expect(`blk.${l}.attn_k.weight`, [64, 32], 'f16');
      expect(`blk.${l}.attn_v.weight`, [64, 32], 'f16');
      expect(`blk.${l}.attn_output.weight`, [64, 64], 'f16');
      expect(`blk.${l}.ffn_norm.weight`, [64], 'f32');
      expect(`blk.${l}.ffn_gate.weight`, [64, 192], 'f16');
      expect(`blk.${l}.ffn_up.weight`, [64, 192], 'f16');
      expect(`blk.${l}.ffn_down.weight`, [192, 64], 'f16');
    }
    assert.equal(h.tensors.length, 3 + 2 * 9);

    // Weights are in range and spread as planned: attn_q uniform with std 1/sqrt(64).
    const file = await readFile(out);
    const q = byName.get('blk.0.attn_q.weight')!;
    const at = h.dataOffset + Number(q.offset);
    let sum2 = 0;
    for (let i = 0; i < 64 * 64; i++) {
      const v = fp16ToFp32(file.readUInt16LE(at + 2 * i));
      assert.ok(Math.abs(v) <= Math.sqrt(3 / 64) + 1e-3);
      sum2 += v * v;
    }
    const std = Math.sqrt(sum2 / 4096);
    assert.ok(Math.abs(std - 1 / 8) < 0.01, `std ${std}`);
    const norm = byName.get('blk.0.attn_norm.weight')!;
    const nv = file.readFloatLE(h.dataOffset + Number(norm.offset));
    assert.ok(nv >= 0.9 && nv < 1.1);
  }));

test('same arguments give identical bytes; another seed gives other weights', () =>
  withDir(async (dir) => {
    const a = join(dir, 'a.gguf');
    const b = join(dir, 'b.gguf');
    const c = join(dir, 'c.gguf');
    await makeModel({ arch: 'bamboo', size: 'small', type: 'f32', seed: 11, out: a });
    await makeModel({ arch: 'bamboo', size: 'small', type: 'f32', seed: 11, out: b });
    await makeModel({ arch: 'bamboo', size: 'small', type: 'f32', seed: 12, out: c });
    const [fa, fb, fc] = await Promise.all([readFile(a), readFile(b), readFile(c)]);
    assert.ok(fa.equals(fb));
    assert.equal(fa.length, fc.length);
    assert.ok(!fa.equals(fc));
    const m = metadataValues(await readGgufHeader(a));
    assert.equal(m.get('general.architecture'), 'bamboo');
    assert.equal(m.get('bamboo.embedding_length'), 256);
    assert.equal(m.get('bamboo.attention.head_count_kv'), 4);
    assert.equal(m.get('llama.embedding_length'), undefined);
  }));

test('the file\'s tokenizer metadata rebuilds the fixture tokenizer', () =>
  withDir(async (dir) => {
    const out = join(dir, 't.gguf');
    await makeModel({ arch: 'llama', size: 'tiny', type: 'f32', seed: 1, out });
    const tok = SpmTokenizer.fromMetadata(metadataValues(await readGgufHeader(out)));
    assert.equal(tok.nVocab, loadFixtureVocab().pieces.length);
    const ids = tok.encode('In the beginning God created the heaven and the earth.');
    assert.equal(ids[0], 1);
    assert.equal(tok.decode(ids), 'In the beginning God created the heaven and the earth.');
  }));

test('--relu names a llama model so loaders pick the ReLU FFN; --tied drops output.weight', () =>
  withDir(async (dir) => {
    const out = join(dir, 'r.gguf');
    await makeModel({ arch: 'llama', size: 'tiny', type: 'f32', seed: 1, out, relu: true, tied: true });
    const h = await readGgufHeader(out);
    assert.match(String(metadataValues(h).get('general.name')), /relu/i);
    assert.ok(!h.tensors.some((t) => t.name === 'output.weight'));
    assert.ok(h.tensors.some((t) => t.name === 'token_embd.weight'));
  }));

test('the vocabulary is cut or extended to the size asked for, uniquely', () => {
  const fixture = loadFixtureVocab();
  const big = syntheticVocab(32000);
  assert.equal(big.pieces.length, 32000);
  assert.equal(new Set(big.pieces).size, 32000);
  assert.deepEqual(big.pieces.slice(0, fixture.pieces.length), fixture.pieces);
  const minReal = Math.min(...fixture.scores);
  for (let i = fixture.pieces.length; i < 32000; i++) {
    assert.ok(big.scores[i] < minReal);
    assert.equal(big.types[i], 1);
    assert.equal(Math.fround(big.scores[i]), big.scores[i]);
  }
  // The extension does not change how text encodes.
  const tok = (v: typeof big) =>
    SpmTokenizer.fromMetadata(
      new Map<string, import('../../server/engine/types.js').GgufValue>([
        ['tokenizer.ggml.model', 'llama'],
        ['tokenizer.ggml.tokens', v.pieces],
        ['tokenizer.ggml.scores', v.scores],
        ['tokenizer.ggml.token_type', v.types],
      ]),
    );
  const text = 'And the zqa of the earth, 1234 Привет 😀';
  assert.deepEqual(tok(big).encode(text), tok(fixture).encode(text));
  assert.equal(syntheticVocab(minVocabSize()).pieces.length, minVocabSize());
  assert.throws(() => syntheticVocab(100), /vocabulary size 100 is too small/);
});

test('bad options are refused naming the flag', async () => {
  const base = { arch: 'llama', size: 'tiny', type: 'f32', seed: 1, out: join(tmpdir(), 'never.gguf') };
  await assert.rejects(makeModel({ ...base, arch: 'gpt2' }), /--arch: unknown architecture "gpt2"/);
  await assert.rejects(makeModel({ ...base, size: '3b' }), /--size: unknown size "3b"/);
  await assert.rejects(makeModel({ ...base, type: 'q5_1' }), /--type: unknown weight type "q5_1"/);
  assert.equal(existsSync(base.out), false);
});

// dist/test/gguf -> repository root
const addonBuilt = existsSync(join(fileURLToPath(new URL('../../../', import.meta.url)), 'build', 'Release', 'relu_serve.node'));

test('quantised models: types as documented, weights match the f32 model, engine decodes them', { skip: !addonBuilt && 'native addon not built' }, () =>
  withDir(async (dir) => {
    const { native } = await import('../../server/engine/binding.js');
    const { Model, sequenceBatch } = await import('../../server/engine/engine.js');
    const f32Path = join(dir, 'f32.gguf');
    await makeModel({ arch: 'llama', size: 'small', type: 'f32', seed: 4, out: f32Path });
    const f32File = await readFile(f32Path);
    const f32Head = await readGgufHeader(f32Path);
    const tensorF32 = (name: string): Float32Array => {
      const t = f32Head.tensors.find((x) => x.name === name)!;
      const n = t.dims.reduce((a, b) => a * b, 1);
      return new Float32Array(f32File.buffer.slice(f32File.byteOffset + f32Head.dataOffset + Number(t.offset)).slice(0, n * 4));
    };
    const cases: [string, string, string, number][] = [
      // type, matrices, output.weight, max abs error vs f32 (weights are within +-0.11)
      ['q8_0', 'q8_0', 'q8_0', 0.002],
      ['q4_0', 'q4_0', 'q6_k', 0.02],
      ['q4_k', 'q4_k', 'q6_k', 0.02],
      ['q5_k', 'q5_k', 'q6_k', 0.01],
      ['q6_k', 'q6_k', 'q6_k', 0.005],
      ['bf16', 'bf16', 'bf16', 0.001],
    ];
    for (const [type, matrices, output, tol] of cases) {
      const path = join(dir, `${type}.gguf`);
      await makeModel({ arch: 'llama', size: 'small', type, seed: 4, out: path });
      const h = await readGgufHeader(path);
      const file = await readFile(path);
      const ty = (name: string) => h.tensors.find((t) => t.name === name)!.typeName;
      assert.equal(ty('blk.1.ffn_down.weight'), matrices, type);
      assert.equal(ty('token_embd.weight'), matrices, type);
      assert.equal(ty('output.weight'), output, type);
      assert.equal(ty('blk.1.ffn_norm.weight'), 'f32');
      // Dequantised weights are the f32 model's weights up to quantisation error.
      for (const name of ['blk.1.attn_k.weight', 'output.weight']) {
        const t = h.tensors.find((x) => x.name === name)!;
        const n = t.dims[0] * t.dims[1];
        const bytes = Number(tensorByteSize(t.dims, resolveGgmlType(t.typeId)));
        const at = h.dataOffset + Number(t.offset);
        const deq = native.kernels.dequantize(t.typeId, file.subarray(at, at + bytes), n);
        const ref = tensorF32(name);
        let maxErr = 0;
        for (let i = 0; i < n; i++) maxErr = Math.max(maxErr, Math.abs(deq[i] - ref[i]));
        assert.ok(maxErr < tol, `${type} ${name}: max error ${maxErr}`);
      }
      const model = await Model.load(path);
      const ctx = await model.createContext({ nSeq: 1, nCtx: 16, threads: 1 });
      const ref = await model.createContext({ nSeq: 1, nCtx: 16, threads: 1, backend: 'ref' });
      try {
        const logits = await ctx.decode(sequenceBatch([1, 300, 301, 302], 0, 0));
        assert.equal(logits.length, model.info.nVocab);
        // The engine's kernels on this file give the plain reference forward's logits (a
        // wrong dequantisation in either shows, not only a NaN); tolerance as in forward.test.ts.
        const want = await ref.decode(sequenceBatch([1, 300, 301, 302], 0, 0));
        const e = relErr(logits, want);
        assert.ok(e < (type === 'bf16' ? 1e-4 : 5e-2), `${type}: relative logit error ${e} against the reference backend`);
        assert.ok(Math.max(...want) > Math.min(...want), `${type}: constant logits`);
      } finally {
        ctx.dispose();
        ref.dispose();
        model.dispose();
      }
    }
  }));
