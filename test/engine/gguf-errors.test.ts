// Malformed and unsupported model files are refused with a message naming the problem;
// the process never crashes, hangs or runs out of memory on them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Model, sequenceBatch } from '../../server/engine/engine.js';
import { writeGguf } from '../../server/gguf/writer.js';
import { ByteBuilder } from '../../server/gguf/encoder.js';
import { testDir } from './models.js';
import { D, FF, tinyParts, toSpec, type SpecParts } from './spec.js';
import type { GgufSpec } from '../../server/gguf/writer.js';

let n = 0;
async function write(spec: GgufSpec): Promise<string> {
  const path = join(testDir, `case-${n++}.gguf`);
  await writeGguf(path, spec);
  return path;
}

function expectRefusal(path: string, code: string, re: RegExp) {
  return assert.rejects(Model.load(path), (e: Error & { code?: string }) => {
    assert.match(e.message, re);
    assert.equal(e.code, code, `code for: ${e.message}`);
    return true;
  });
}

function edit(f: (p: SpecParts) => void): SpecParts {
  const p = tinyParts();
  f(p);
  return p;
}

test('the unmodified spec loads and decodes (control case)', async () => {
  const m = await Model.load(await write(toSpec(tinyParts())));
  assert.equal(m.info.nEmbd, D);
  assert.equal(m.info.ffnActivation, 'swiglu');
  const ctx = await m.createContext({ nSeq: 1, nCtx: 8 });
  const logits = await ctx.decode(sequenceBatch([1, 3, 4], 0, 0));
  assert.equal(logits.length, 8);
  ctx.dispose();
  m.dispose();
});

test('bad magic', async () => {
  await expectRefusal(await write(toSpec(tinyParts(), { magic: 'GGML' })), 'RS_ERR_FORMAT', /bad magic 'GGML'/);
});

test('unsupported versions', async () => {
  await expectRefusal(await write(toSpec(tinyParts(), { version: 4 })), 'RS_ERR_FORMAT', /unsupported GGUF version 4/);
  await expectRefusal(await write(toSpec(tinyParts(), { version: 1 })), 'RS_ERR_UNSUPPORTED', /version 1 is not supported/);
});

test('GGUF v2 loads', async () => {
  const m = await Model.load(await write(toSpec(tinyParts(), { version: 2 })));
  assert.equal(m.info.ggufVersion, 2);
  m.dispose();
});

test('truncated files', async () => {
  const full = toSpec(tinyParts());
  await expectRefusal(await write({ ...full, overrides: { truncateAt: 20 } }), 'RS_ERR_FORMAT', /truncated/);
  await expectRefusal(await write({ ...full, overrides: { truncateAt: 3000 } }), 'RS_ERR_FORMAT', /truncated|outside the data section/);
  const path = join(testDir, 'empty.gguf');
  writeFileSync(path, '');
  await expectRefusal(path, 'RS_ERR_FORMAT', /is empty/);
});

test('tensor data out of bounds', async () => {
  const p = edit((p) => (p.tensors[5].offsetOverride = 1n << 40n));
  await expectRefusal(await write(toSpec(p)), 'RS_ERR_FORMAT', /tensor 'blk\.0\.attn_k\.weight' data .* outside the data section/);
  const q = edit((p) => (p.tensors[5].offsetOverride = 33));
  await expectRefusal(await write(toSpec(q)), 'RS_ERR_FORMAT', /not aligned/);
});

test('absurd counts are refused before anything is allocated', async () => {
  await expectRefusal(await write(toSpec(tinyParts(), { overrides: { kvCount: 1n << 50n } })), 'RS_ERR_FORMAT', /metadata count \d+ is absurd/);
  await expectRefusal(await write(toSpec(tinyParts(), { overrides: { tensorCount: 1n << 50n } })), 'RS_ERR_FORMAT', /tensor count \d+ is absurd/);
  // Hand-made headers: a string and arrays whose stated lengths exceed the file.
  const header = (kv: (b: ByteBuilder) => void) => {
    const b = new ByteBuilder();
    b.bytes(new TextEncoder().encode('GGUF'));
    b.u32(3);
    b.u64(0);
    b.u64(1);
    b.string('general.architecture');
    kv(b);
    const path = join(testDir, `raw-${n++}.gguf`);
    writeFileSync(path, b.toBuffer());
    return path;
  };
  await expectRefusal(header((b) => { b.u32(8); b.u64(1n << 60n); }), 'RS_ERR_FORMAT', /string length \d+ exceeds/);
  await expectRefusal(header((b) => { b.u32(9); b.u32(4); b.u64(1n << 61n); }), 'RS_ERR_FORMAT', /array of \d+ u32 exceeds/);
  await expectRefusal(header((b) => { b.u32(9); b.u32(8); b.u64(1n << 40n); }), 'RS_ERR_FORMAT', /strings cannot fit/);
  await expectRefusal(header((b) => { b.u32(77); }), 'RS_ERR_FORMAT', /unknown value type 77/);
  const dims = edit((p) => (p.tensors[4].dims = [D, 1 << 20, 1 << 20]));
  await expectRefusal(await write(toSpec(dims, { overrides: { allowSizeMismatch: true } })), 'RS_ERR_FORMAT', /absurd|outside the data section/);
});

test('missing tensors and keys', async () => {
  const p = edit((p) => (p.tensors = p.tensors.filter((t) => t.name !== 'blk.0.ffn_up.weight')));
  await expectRefusal(await write(toSpec(p)), 'RS_ERR_FORMAT', /missing tensor 'blk\.0\.ffn_up\.weight'/);
  const q = edit((p) => p.metadata.delete('llama.embedding_length'));
  await expectRefusal(await write(toSpec(q)), 'RS_ERR_FORMAT', /missing metadata key 'llama\.embedding_length'/);
  const r = edit((p) => p.metadata.set('general.architecture', { type: 'string', value: 'gpt2' }));
  await expectRefusal(await write(toSpec(r)), 'RS_ERR_UNSUPPORTED', /architecture 'gpt2' is not supported/);
});

test('wrong shapes and inconsistent hyper-parameters', async () => {
  const p = edit((p) => {
    const t = p.tensors.find((t) => t.name === 'blk.0.ffn_up.weight')!;
    t.dims = [D, FF + 32];
    t.data = new Uint8Array(D * (FF + 32) * 4);
  });
  await expectRefusal(await write(toSpec(p)), 'RS_ERR_FORMAT', /'blk\.0\.ffn_up\.weight' has shape \[32, 96\], expected \[32, 64\]/);
  const q = edit((p) => p.metadata.set('llama.attention.head_count', { type: 'u32', value: 3 }));
  await expectRefusal(await write(toSpec(q)), 'RS_ERR_FORMAT', /not a multiple of head_count 3/);
  const r = edit((p) => p.metadata.set('tokenizer.ggml.tokens', { type: 'array', elemType: 'string', value: ['a', 'b'] }));
  await expectRefusal(await write(toSpec(r)), 'RS_ERR_FORMAT', /tokenizer\.ggml\.tokens has 2 entries but token_embd\.weight has 8 rows/);
  const s = edit((p) => p.metadata.set('llama.block_count', { type: 'string', value: 'one' }));
  await expectRefusal(await write(toSpec(s)), 'RS_ERR_FORMAT', /'llama\.block_count' should be an integer, found string/);
});

test('unsupported weight types name the tensor and the type', async () => {
  const p = edit((p) => {
    const t = p.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!;
    t.type = 'q4_1';
    t.data = new Uint8Array((D * D / 32) * 20);
  });
  await expectRefusal(await write(toSpec(p)), 'RS_ERR_UNSUPPORTED', /tensor 'blk\.0\.attn_q\.weight' has type q4_1/);
});

test('a file that does not exist', async () => {
  await expectRefusal(join(testDir, 'nope.gguf'), 'RS_ERR_IO', /cannot open model file/);
});

test('a PowerInfer (PWRI) file with ffn_down_t loads and equals its dense twin', async () => {
  // Same weights: ffn_down {FF, D} in the dense file, its transpose ffn_down_t {D, FF} in the PWRI one.
  const dense = tinyParts();
  const down = dense.tensors.find((t) => t.name === 'blk.0.ffn_down.weight')!;
  const w = new Float32Array((down.data as Uint8Array).slice().buffer); // rows: D outputs x FF inputs
  const wt = new Float32Array(D * FF);
  for (let o = 0; o < D; o++) for (let i = 0; i < FF; i++) wt[i * D + o] = w[o * FF + i];
  const sparse = tinyParts();
  sparse.tensors = sparse.tensors.filter((t) => t.name !== 'blk.0.ffn_down.weight');
  sparse.tensors.push({ name: 'blk.0.ffn_down_t.weight', dims: [D, FF], type: 'f32', data: new Uint8Array(wt.buffer) });
  sparse.metadata.set('powerinfer.sparse_threshold', { type: 'f32', value: 0 });
  const act = { ffnActivation: 'relu_glu' as const };
  const a = await Model.load(await write(toSpec(dense)), act);
  const b = await Model.load(await write(toSpec(sparse, { magic: 'PWRI' })));
  assert.equal(b.info.isPowerInfer, true);
  assert.equal(b.info.ffnActivation, 'relu_glu');
  assert.equal(b.info.ffnActivationFrom, 'powerinfer magic');
  const run = async (m: Model) => {
    const c = await m.createContext({ nSeq: 1, nCtx: 8 });
    const l = await c.decode(sequenceBatch([1, 3, 5, 7], 0, 0, true));
    c.dispose();
    return l;
  };
  const la = await run(a);
  const lb = await run(b);
  for (let i = 0; i < la.length; i++) assert.ok(Math.abs(la[i] - lb[i]) < 1e-4, `logit ${i}: ${la[i]} vs ${lb[i]}`);
  a.dispose();
  b.dispose();
});

test('the FFN activation is decided from the file and can be overridden', async () => {
  const bamboo = await Model.load(await write(toSpec(tinyParts('bamboo'))));
  assert.deepEqual([bamboo.info.ffnActivation, bamboo.info.ffnActivationFrom], ['drelu', 'architecture']);
  bamboo.dispose();
  const relu = edit((p) => p.metadata.set('general.name', { type: 'string', value: 'ReluLLaMA-7B' }));
  const r = await Model.load(await write(toSpec(relu)));
  assert.deepEqual([r.info.ffnActivation, r.info.ffnActivationFrom], ['relu_glu', 'model name']);
  r.dispose();
  const o = await Model.load(await write(toSpec(tinyParts())), { ffnActivation: 'drelu' });
  assert.deepEqual([o.info.ffnActivation, o.info.ffnActivationFrom], ['drelu', 'flag']);
  o.dispose();
  await assert.rejects(Model.load(await write(toSpec(tinyParts())), { ffnActivation: 'gelu' as never }), /unknown FFN activation 'gelu'/);
});

test('metadata of every value type reaches JavaScript intact', async () => {
  const p = edit((p) => {
    const m = p.metadata;
    m.set('t.u8', { type: 'u8', value: 255 });
    m.set('t.i8', { type: 'i8', value: -128 });
    m.set('t.u16', { type: 'u16', value: 65535 });
    m.set('t.i16', { type: 'i16', value: -32768 });
    m.set('t.u32', { type: 'u32', value: 4294967295 });
    m.set('t.i32', { type: 'i32', value: -2147483648 });
    m.set('t.f32', { type: 'f32', value: 0.5 });
    m.set('t.f64', { type: 'f64', value: Math.PI });
    m.set('t.bool', { type: 'bool', value: true });
    m.set('t.u64', { type: 'u64', value: (1n << 63n) + 5n });
    m.set('t.i64', { type: 'i64', value: -42n });
    m.set('t.str', { type: 'string', value: 'héllo ▁ 世界 😀' });
    m.set('t.arr', { type: 'array', elemType: 'i16', value: [1, -2, 3] });
    m.set('t.nested', { type: 'array', elemType: 'array', value: [{ type: 'array', elemType: 'string', value: ['x', 'y'] }, { type: 'array', elemType: 'f32', value: [1.5] }] });
  });
  const m = await Model.load(await write(toSpec(p)));
  const md = m.metadata;
  assert.equal(md.get('t.u8'), 255);
  assert.equal(md.get('t.i8'), -128);
  assert.equal(md.get('t.u16'), 65535);
  assert.equal(md.get('t.i16'), -32768);
  assert.equal(md.get('t.u32'), 4294967295);
  assert.equal(md.get('t.i32'), -2147483648);
  assert.equal(md.get('t.f32'), 0.5);
  assert.equal(md.get('t.f64'), Math.PI);
  assert.equal(md.get('t.bool'), true);
  assert.equal(md.get('t.u64'), (1n << 63n) + 5n);
  assert.equal(md.get('t.i64'), -42);
  assert.equal(md.get('t.str'), 'héllo ▁ 世界 😀');
  assert.deepEqual(md.get('t.arr'), [1, -2, 3]);
  assert.deepEqual(md.get('t.nested'), [['x', 'y'], [1.5]]);
  m.dispose();
});
