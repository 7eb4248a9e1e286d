// VRAM accounting details vram-plan.test.ts leaves out: the whole working-buffer list
// (formulas as in addon/src/vram_plan.cpp workspace_parts), which tensors land where,
// each refusal, and the byte-size parser and formatter.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { devicePiece, ffnBytes, formatBytes, kvCacheBytes, parseByteSize, vramCosts, workspaceParts } from '../../server/profiler/vram-costs.js';
import type { TensorDesc } from '../../server/profiler/model-identity.js';
import { syntheticModel } from './synthetic.js';

const msg = (re: RegExp) => (e: Error) => (assert.match(e.message, re), true);

test('working buffers: every part, sized per batch row or per group of at most 64 rows', () => {
  // n_embd 40, 4 heads of 10, 2 KV heads (kv dim 20), n_ff 1100 (3 chunks of 512), 50 tokens.
  const m = syntheticModel({ nLayer: 1, nFf: 1100, nEmbd: 40, nHead: 4, nHeadKv: 2, nVocab: 50 });
  const parts = (nb: number, g: number, rank: number) => [
    ['x', nb * 40 * 4], ['xb', nb * 40 * 4], ['q', nb * 40 * 4], ['k', nb * 20 * 4], ['v', nb * 20 * 4], ['att', nb * 40 * 4],
    ['pos', nb * 4], ['seq', nb * 4], ['act_q', nb * 2 * 36], ['z1', g * rank * 4], ['scores', g * 1100 * 4],
    ['nmask', 1100 * 8], ['hot_list', 1100 * 4], ['hot_mask', 1100 * 8], ['counts', 64], ['hot_h', 1100 * g * 4],
    ['hot_part', g * 3 * 40 * 4], ['hot_y', g * 40 * 4], ['cold_y', g * 40 * 4], ['logits', g * 50 * 4], ['att_part', g * 16 * 4 * 12 * 4],
  ];
  assert.deepEqual(workspaceParts(m, 100, 16), parts(100, 64, 16));
  assert.deepEqual(workspaceParts(m, 10, 7), parts(10, 10, 7));
  assert.throws(() => workspaceParts(m, 0, 1), msg(/^batch size 0 must be a positive integer$/));
  assert.throws(() => kvCacheBytes(m, { nCtx: 1.5 }), msg(/^context size 1\.5 must be a positive integer$/));
  assert.throws(() => kvCacheBytes(m, { nCtx: 4, nSeq: 0 }), msg(/^sequence count 0 must be a positive integer$/));
});

test('which tensors go where: predictors (largest rank sizes z1), norms as f32, output or tied embedding, the rest on the CPU', () => {
  const m = syntheticModel({ nLayer: 2, nFf: 64, nEmbd: 32, powerinfer: true });
  // Layer 1's predictor has a larger rank; an unknown tensor and a layer past n_layer stay on the CPU.
  const fc1 = m.tensors.findIndex((t) => t.name === 'blk.1.fc1.weight');
  m.tensors[fc1] = { ...m.tensors[fc1], shape: [32, 96], bytes: 32 * 96 * 2 };
  const extra: TensorDesc[] = [
    { name: 'rope_freqs.weight', type: 0, typeName: 'f32', shape: [8], bytes: 32 },
    { name: 'blk.2.ffn_gate.weight', type: 1, typeName: 'f16', shape: [32, 64], bytes: 4096 },
  ];
  const c = vramCosts({ ...m, tensors: [...m.tensors, ...extra] }, { nCtx: 8, nBatch: 4 });
  const embd = 32 * 256 * 2;
  assert.equal(c.cpuOnly, embd + 32 + 4096);
  assert.equal(c.fixed.predictors, devicePiece(32 * 64 * 2) + devicePiece(64 * 64 * 2) + devicePiece(32 * 96 * 2) + devicePiece(64 * 64 * 2));
  assert.equal(c.fixed.norms, 5 * devicePiece(32 * 4));
  assert.equal(c.fixed.workspace, workspaceParts(m, 4, 96).reduce((s, [, b]) => s + devicePiece(b), 0));
  assert.equal(c.fixed.output, devicePiece(32 * 256 * 2));
  assert.equal(c.fixedTotal, Object.values(c.fixed).reduce((a, b) => a + b, 0));
  assert.equal(c.ffnTotal, ffnBytes(c.neuronCost, [64, 64]));
  assert.equal(ffnBytes([100, 300], [3, 1]), 512 + 512);
  // Without predictors resident the rank is 0 and their bytes stay off the device.
  const off = vramCosts(m, { nCtx: 8, nBatch: 4, predictors: false });
  assert.equal(off.fixed.predictors, 0);
  assert.equal(off.fixed.workspace, workspaceParts(m, 4, 0).reduce((s, [, b]) => s + devicePiece(b), 0));
  // No output matrix and no embedding: nothing to place for the logits.
  const bare = syntheticModel({ nLayer: 1, nFf: 8, nEmbd: 8, nHead: 2, tiedOutput: true });
  assert.equal(vramCosts({ ...bare, tensors: bare.tensors.filter((t) => t.name !== 'token_embd.weight') }, { nCtx: 1 }).fixed.output, 0);
});

test('a layer without its FFN matrices, or with the wrong neuron count, is refused by name', () => {
  const m = syntheticModel({ nLayer: 2, nFf: 16, nEmbd: 8, nHead: 2 });
  const without = (name: string) => ({ ...m, tensors: m.tensors.filter((t) => t.name !== name) });
  assert.throws(() => vramCosts(without('blk.1.ffn_gate.weight'), { nCtx: 1 }), msg(/^layer 1 has no ffn_gate weight: cannot cost its neurons$/));
  assert.throws(() => vramCosts(without('blk.0.ffn_up.weight'), { nCtx: 1 }), msg(/^layer 0 has no ffn_up weight/));
  assert.throws(() => vramCosts(without('blk.0.ffn_down.weight'), { nCtx: 1 }), msg(/^layer 0 has no ffn_down \/ ffn_down_t weight/));
  const reshape = (name: string, shape: number[]) => ({ ...m, tensors: m.tensors.map((t) => (t.name === name ? { ...t, shape } : t)) });
  assert.throws(() => vramCosts(reshape('blk.0.ffn_up.weight', [8, 15]), { nCtx: 1 }), msg(/^blk\.0\.ffn_up\.weight has 15 neurons, expected n_ff = 16$/));
  assert.throws(() => vramCosts(reshape('blk.1.ffn_down.weight', [15, 8]), { nCtx: 1 }), msg(/^blk\.1\.ffn_down\.weight has 15 neurons, expected n_ff = 16$/));
  const p = syntheticModel({ nLayer: 1, nFf: 16, nEmbd: 8, nHead: 2, powerinfer: true });
  assert.throws(() => vramCosts({ ...p, tensors: p.tensors.map((t) => (t.name === 'blk.0.ffn_down_t.weight' ? { ...t, shape: [8, 17] } : t)) }, { nCtx: 1 }), msg(/ffn_down_t\.weight has 17 neurons/));
});

test('byte sizes: binary units with i, decimal without, plain bytes; formatted in binary units', () => {
  for (const [text, bytes] of [
    ['1KiB', 1024], ['1k', 1000], ['2KB', 2000], ['3 MiB', 3 * 2 ** 20], ['1TiB', 2 ** 40], ['2T', 2e12], ['7', 7], ['7b', 7], [' 12 B ', 12],
    ['.5GiB', 2 ** 29], ['1.5e3', 1500], ['2.7', 2],
  ] as const) {
    assert.equal(parseByteSize(text), bytes, text);
  }
  assert.throws(() => parseByteSize('1e300'), msg(/^size "1e300" is out of range$/));
  assert.throws(() => parseByteSize('5 PiB'), msg(/^cannot read "5 PiB" as a size \(examples: 6GiB, 512MiB, 1e9\)$/));
  assert.throws(() => parseByteSize('1 GiBs'), msg(/cannot read/));
  for (const [n, s] of [[0, '0 B'], [1023, '1023 B'], [1024, '1.00 KiB'], [1.5 * 2 ** 20, '1.50 MiB'], [3 * 2 ** 30, '3.00 GiB'], [2 ** 50, '1024.00 TiB'], [-2048, '-2.00 KiB']] as const) {
    assert.equal(formatBytes(n), s);
  }
});

test('tensors are placed by their exact names: look-alikes stay on the CPU', () => {
  // Names that contain a device tensor's name (another tower's, a suffix, a prefix) are
  // not it: each stays on the CPU and changes no device sum.
  const t = (name: string, bytes: number): TensorDesc => ({ name, type: 0, typeName: 'f32', shape: [8, 64], bytes });
  const look = [
    'v.blk.0.attn_q.weight', 'blk.0.attn_q.weight\n', 'blk.0.xattn_q.weight', 'blk.0.attn_q.weight.bak',
    'blk.0.post_ffn_norm.weight', 'blk.0.ffn_norm.weight.bak', 'blk.0.xfc1.weight', 'blk.0.fc2.weight.bak',
    'blk.0.shared_ffn_up.weight', 'blk.0.ffn_gate.weight.bak',
  ].map((name, i) => t(name, 1000 + i));
  const p = syntheticModel({ nLayer: 1, nFf: 64, nEmbd: 8, nHead: 2, powerinfer: true });
  const base = vramCosts(p, { nCtx: 4, nBatch: 4 });
  const withLook = vramCosts({ ...p, tensors: [...p.tensors, ...look] }, { nCtx: 4, nBatch: 4 });
  assert.deepEqual(withLook.fixed, base.fixed);
  assert.deepEqual(withLook.neuronCost, base.neuronCost);
  assert.equal(withLook.cpuOnly, base.cpuOnly + look.reduce((s, x) => s + x.bytes, 0));
});

test('predictors count when the file has a blk.N.fc1.weight of any layer, and only then', () => {
  // Predictor matrices of layer 10 only (two-digit layer number): detected, costed, rank 64.
  const m = syntheticModel({ nLayer: 11, nFf: 64, nEmbd: 8, nHead: 2 });
  const fc = (l: number, k: 1 | 2, shape: number[]): TensorDesc => ({ name: `blk.${l}.fc${k}.weight`, type: 1, typeName: 'f16', shape, bytes: 2 * shape[0] * shape[1] });
  const late = vramCosts({ ...m, tensors: [...m.tensors, fc(10, 1, [8, 64]), fc(10, 2, [64, 64])] }, { nCtx: 1, nBatch: 4 });
  assert.equal(late.fixed.predictors, devicePiece(8 * 64 * 2) + devicePiece(64 * 64 * 2));
  // An fc2 without any fc1 (and fc1 look-alikes) does not turn predictor mode on.
  const look = [fc(0, 2, [64, 64]), { ...fc(0, 1, [8, 64]), name: 'v.blk.0.fc1.weight' }, { ...fc(0, 1, [8, 64]), name: 'blk.0.fc1.weight.bak' }];
  const none = vramCosts({ ...m, tensors: [...m.tensors, ...look] }, { nCtx: 1, nBatch: 4 });
  assert.equal(none.fixed.predictors, 0);
  assert.equal(none.cpuOnly, vramCosts(m, { nCtx: 1 }).cpuOnly + look.reduce((s, x) => s + x.bytes, 0));
});

test('the working buffers are sized by the predictors rank (fc1), not by fc2 whose second dimension is n_ff', () => {
  // fc1 {8, 64}: rank 64; fc2 {64, 128}: 128 neurons. z1 holds 64 rows x rank floats.
  const p = syntheticModel({ nLayer: 2, nFf: 128, nEmbd: 8, nHead: 2, powerinfer: true });
  const c = vramCosts(p, { nCtx: 1, nBatch: 64 });
  assert.equal(c.fixed.workspace, workspaceParts(p, 64, 64).reduce((s, [, b]) => s + devicePiece(b), 0));
  assert.notEqual(c.fixed.workspace, workspaceParts(p, 64, 128).reduce((s, [, b]) => s + devicePiece(b), 0));
});

test('the output matrix is output.weight when the file has one, else the token embedding (not another CPU tensor)', () => {
  const m = syntheticModel({ nLayer: 1, nFf: 8, nEmbd: 32, nHead: 2, nVocab: 100 });
  // A q8_0 output matrix: 100 rows of 34 bytes, a different size from the f16 embedding.
  const q8: TensorDesc = { name: 'output.weight', type: 8, typeName: 'q8_0', shape: [32, 100], bytes: 100 * 34 };
  const sep = vramCosts({ ...m, tensors: [...m.tensors.filter((t) => t.name !== 'output.weight'), q8] }, { nCtx: 1 });
  assert.equal(sep.fixed.output, devicePiece(100 * 34));
  assert.equal(sep.cpuOnly, 32 * 100 * 2, 'only the embedding stays on the CPU');
  // Tied output, with another CPU-only tensor after the embedding: the embedding is copied.
  const tied = syntheticModel({ nLayer: 1, nFf: 8, nEmbd: 32, nHead: 2, nVocab: 100, tiedOutput: true });
  const rope: TensorDesc = { name: 'rope_freqs.weight', type: 0, typeName: 'f32', shape: [8], bytes: 32 };
  const c = vramCosts({ ...tied, tensors: [...tied.tensors, rope] }, { nCtx: 1 });
  assert.equal(c.fixed.output, devicePiece(32 * 100 * 2));
  assert.equal(c.cpuOnly, 32 * 100 * 2 + 32);
});

test('the neuron index is two int32 maps of n_ff entries per layer, each its own piece', () => {
  const m = syntheticModel({ nLayer: 3, nFf: 1100, nEmbd: 8, nHead: 2 });
  assert.equal(vramCosts(m, { nCtx: 1 }).fixed.index, 3 * 2 * devicePiece(4 * 1100));
  assert.equal(devicePiece(4 * 1100), 4608);
});

test('byte sizes: several digits after the point, signed exponents', () => {
  assert.equal(parseByteSize('1.25KiB'), 1280);
  assert.equal(parseByteSize('0.125 MB'), 125000);
  assert.equal(parseByteSize('1e+3'), 1000);
  assert.equal(parseByteSize('5e-1KiB'), 512);
});
