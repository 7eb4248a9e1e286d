// The sparse FFN against the dense one on the same weights, and its invariants:
// thread-count independence, per-row active sets in a batch, statistics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Model, sequenceBatch } from '../../server/engine/engine.js';
import type { DecodeBatch, FfnMode } from '../../server/engine/types.js';
import { makeModel } from '../../server/cli/make-model.js';
import { testDir, tinyModel } from './models.js';
import { assertBatchedEqualsAlone, relErr } from './compare.js';

const PROMPT = [1, 17, 42, 99, 7, 300, 12, 5, 250, 64, 33, 128];


/**
 * Decodes PROMPT one token per step (so every step takes the sparse path when enabled).
 * `expect`: the mode the context must report; for 'auto' the caller names what auto has
 * to resolve to, so a model silently running dense cannot pass as sparse.
 */
async function stepwise(model: Model, ffnMode: Exclude<FfnMode, 'auto'>, threads?: number): Promise<Float32Array[]>;
async function stepwise(model: Model, ffnMode: 'auto', threads: number, expect: Exclude<FfnMode, 'auto'>): Promise<Float32Array[]>;
async function stepwise(model: Model, ffnMode: FfnMode, threads = 2, expect: FfnMode = ffnMode): Promise<Float32Array[]> {
  const ctx = await model.createContext({ nSeq: 1, nCtx: 64, ffnMode, threads });
  try {
    const out: Float32Array[] = [];
    for (let i = 0; i < PROMPT.length; i++) out.push(await ctx.decode(sequenceBatch([PROMPT[i]], 0, i)));
    assert.equal(ctx.sparsity().ffnMode, expect);
    return out;
  } finally {
    ctx.dispose();
  }
}

let reluLlama: Promise<string> | undefined;
function reluLlamaModel(type: string): Promise<string> {
  const out = join(testDir, `relu-llama-${type}.gguf`);
  reluLlama ??= makeModel({ arch: 'llama', size: 'tiny', type, seed: 11, out, relu: true }).then(() => out);
  return reluLlama;
}

// Exact mode computes the gate densely and up/down only where it is positive. With float
// weights it equals dense to rounding. With quantised weights the dense down projection
// quantises h to Q8_0 (its activation format) while exact mode multiplies the float h
// into the neuron's down row (dequantised to f16 at load), so they differ by that
// activation rounding: ~1.2e-2 of the logit range measured.
// K-quant files: the same activation rounding (Q8_K there), 1.1e-2 measured for both.
const EXACT_TOL: Record<string, number> = { f32: 1e-4, f16: 1e-4, q8_0: 5e-2, q4_0: 5e-2, q4_k: 5e-2, q6_k: 5e-2 };

for (const type of Object.keys(EXACT_TOL)) {
  test(`exact mode equals dense (bamboo dReLU, ${type})`, async () => {
    const model = await Model.load(await tinyModel('bamboo', type));
    try {
      assert.equal(model.info.sparsePacked, true);
      const dense = await stepwise(model, 'dense');
      const exact = await stepwise(model, 'exact');
      dense.forEach((d, i) => assert.ok(relErr(exact[i], d) < EXACT_TOL[type], `token ${i}: ${relErr(exact[i], d)}`));
    } finally {
      model.dispose();
    }
  });
}

test('exact mode equals dense for a ReLU-gated llama (ReluLLaMA-style)', async () => {
  const model = await Model.load(await reluLlamaModel('f32'));
  try {
    assert.equal(model.info.ffnActivation, 'relu_glu');
    const dense = await stepwise(model, 'dense');
    const exact = await stepwise(model, 'auto', 2, 'exact');
    dense.forEach((d, i) => assert.ok(relErr(exact[i], d) < 1e-4));
  } finally {
    model.dispose();
  }
});

test('exact mode on a ReLU-gated llama equals the reference backend (relu(gate) x up: the halves are not interchangeable)', async () => {
  // Dense and exact share the engine's idea of which matrix is the gate; the reference
  // backend (addon forward.cpp) is written separately, so a swap in the sparse path shows here.
  const model = await Model.load(await reluLlamaModel('f32'));
  try {
    const ctx = await model.createContext({ nSeq: 1, nCtx: 64, backend: 'ref' });
    const ref: Float32Array[] = [];
    for (let i = 0; i < PROMPT.length; i++) ref.push(await ctx.decode(sequenceBatch([PROMPT[i]], 0, i)));
    ctx.dispose();
    const exact = await stepwise(model, 'exact');
    ref.forEach((r, i) => assert.ok(relErr(exact[i], r) < 1e-4, `token ${i}: ${relErr(exact[i], r)}`));
  } finally {
    model.dispose();
  }
});

test('sparse results are bit-identical for any thread count', async () => {
  const model = await Model.load(await tinyModel('bamboo', 'q4_0'));
  try {
    const one = await stepwise(model, 'exact', 1);
    const two = await stepwise(model, 'exact', 2);
    const four = await stepwise(model, 'exact', 4);
    assert.deepEqual(two, one);
    assert.deepEqual(four, one);
  } finally {
    model.dispose();
  }
});

test('in a batch each row gets its own active set (batched == alone, bit for bit)', async () => {
  const model = await Model.load(await tinyModel('bamboo', 'q8_0'));
  const seqs = [[1, 50, 51], [1, 300, 7], [1, 9, 999]];
  try {
    // Each alone, then the same tokens as three sequences decoded together one position per step.
    const sp = await assertBatchedEqualsAlone(model, seqs, { ffnMode: 'exact' });
    assert.equal(sp.sparseSteps, 3);
  } finally {
    model.dispose();
  }
});

test('sparsity statistics: ratios of neurons computed, dense steps count every neuron', async () => {
  const model = await Model.load(await tinyModel('bamboo', 'f32'));
  const ctx = await model.createContext({ nSeq: 1, nCtx: 64, ffnMode: 'exact', sparseMaxBatch: 4 });
  try {
    await ctx.decode(sequenceBatch(PROMPT.slice(0, 8), 0, 0)); // 8 rows > 4: dense
    let sp = ctx.sparsity();
    assert.deepEqual([sp.denseSteps, sp.sparseSteps], [1, 0]);
    assert.ok(sp.lastActiveRatio.every((r) => r === 1));
    await ctx.decode(sequenceBatch([PROMPT[8]], 0, 8)); // sparse
    sp = ctx.sparsity();
    assert.equal(sp.lastRows, 1);
    // Random weights: the gate is positive for about half the neurons.
    assert.ok(sp.lastActiveRatio.every((r) => r > 0.3 && r < 0.7), `${sp.lastActiveRatio}`);
    // Running average over 9 rows: 8 dense (1.0) and 1 sparse.
    sp.avgActiveRatio.forEach((a, l) => assert.ok(Math.abs(a - (8 + sp.lastActiveRatio[l]) / 9) < 1e-9));
    // The counted true activations (dense path while counting) agree with the sparse path:
    // in a dReLU model an active neuron needs gate > 0, so counts <= gate-positive count.
    ctx.setActivationCounting(true);
    await ctx.decode(sequenceBatch([PROMPT[9]], 0, 9));
    const counts = ctx.activationCounts();
    assert.equal(counts.rows, 1);
    assert.equal(ctx.sparsity().denseSteps, 2, 'counting computes the true (dense) activations');
    const fired = counts.layers.map((c) => c.reduce((a, b) => a + b, 0) / c.length);
    fired.forEach((f) => assert.ok(f > 0.1 && f < 0.4, `fired ${f}`));
    assert.deepEqual(counts.predictor[0], { truePositive: 0, falsePositive: 0, falseNegative: 0 });
  } finally {
    ctx.dispose();
    model.dispose();
  }
});

test('FFN modes that cannot apply are refused', async () => {
  const silu = await Model.load(await tinyModel('llama', 'f32'));
  await assert.rejects(silu.createContext({ nSeq: 1, nCtx: 8, ffnMode: 'exact' }), /needs a ReLU-type FFN/);
  assert.equal(silu.info.sparsePacked, false);
  silu.dispose();
  const bamboo = await Model.load(await tinyModel('bamboo', 'f32'));
  await assert.rejects(bamboo.createContext({ nSeq: 1, nCtx: 8, ffnMode: 'predictor' }), /needs a PowerInfer file with predictors/);
  await assert.rejects(bamboo.createContext({ nSeq: 1, nCtx: 8, ffnMode: 'bogus' as FfnMode }), /unknown FFN mode/);
  const ctx = await bamboo.createContext({ nSeq: 1, nCtx: 8 });
  assert.equal(ctx.sparsity().ffnMode, 'exact', 'auto picks exact for a ReLU model without predictors');
  ctx.dispose();
  bamboo.dispose();
  const unpacked = await Model.load(await tinyModel('bamboo', 'f32'), { noRepack: true });
  await assert.rejects(unpacked.createContext({ nSeq: 1, nCtx: 8, ffnMode: 'exact' }), /repacked layout/);
  unpacked.dispose();
});

test('a step mixing a long prompt (dense rows) with generation rows (sparse) gives each what it gets alone', async () => {
  const model = await Model.load(await tinyModel('bamboo', 'q4_0'));
  const nv = model.info.nVocab;
  const prompt = PROMPT.slice(0, 10); // 10 rows > sparseMaxBatch 8: dense
  try {
    const alonePrompt = await (async () => {
      const c = await model.createContext({ nSeq: 2, nCtx: 32 });
      const l = await c.decode(sequenceBatch(prompt, 0, 0, true));
      c.dispose();
      return l;
    })();
    const aloneGen = await (async () => {
      const c = await model.createContext({ nSeq: 2, nCtx: 32 });
      await c.decode(sequenceBatch([1, 5], 1, 0, true));
      const l = await c.decode(sequenceBatch([9], 1, 2));
      c.dispose();
      return l;
    })();
    const ctx = await model.createContext({ nSeq: 2, nCtx: 32 });
    await ctx.decode(sequenceBatch([1, 5], 1, 0, true));
    const b = sequenceBatch(prompt, 0, 0, true);
    const mixed: DecodeBatch = {
      tokens: Int32Array.from([...b.tokens, 9]),
      positions: Int32Array.from([...b.positions, 2]),
      seqIds: Int32Array.from([...b.seqIds, 1]),
      wantLogits: new Uint8Array(prompt.length + 1).fill(1),
    };
    const l = await ctx.decode(mixed);
    assert.deepEqual(l.subarray(0, prompt.length * nv), alonePrompt);
    assert.deepEqual(l.subarray(prompt.length * nv), aloneGen);
    ctx.dispose();
  } finally {
    model.dispose();
  }
});

test('step part times: every part counted once, the neuron choice apart from the rest of the FFN', async () => {
  // A 'small' bamboo model, so a step takes long enough for the parts to dominate it.
  const path = join(testDir, 'bamboo-small-q4_0-parts.gguf');
  await makeModel({ arch: 'bamboo', size: 'small', type: 'q4_0', seed: 7, out: path });
  const model = await Model.load(path);
  try {
    for (const mode of ['dense', 'exact'] as const) {
      const ctx = await model.createContext({ nSeq: 1, nCtx: 64, ffnMode: mode, threads: 1 });
      try {
        assert.deepEqual(ctx.sparsity().phaseMs, { attention: 0, select: 0, ffn: 0, output: 0 });
        for (let i = 0; i < 12; i++) await ctx.decode(sequenceBatch([PROMPT[i]], 0, i));
        const p = ctx.sparsity().phaseMs;
        const total = ctx.stats().totalMs;
        const sum = p.attention + p.select + p.ffn + p.output;
        assert.ok(p.attention > 0 && p.ffn > 0 && p.output > 0, `${mode}: ${JSON.stringify(p)}`);
        if (mode === 'dense') assert.equal(p.select, 0, 'no neuron choice in a dense step');
        // Exact mode chooses by the whole gate product: a large share of the FFN.
        else assert.ok(p.select > 0.1 * p.ffn, `exact: choice ${p.select} ms, rest of the FFN ${p.ffn} ms`);
        // The parts cover the step (all but the embedding lookup and bookkeeping) and are
        // not counted twice: their sum stays within the decode calls' own wall time.
        assert.ok(sum <= total, `${mode}: parts ${sum} ms > decode ${total} ms`);
        assert.ok(sum >= 0.6 * total, `${mode}: parts ${sum} ms cover little of decode ${total} ms`);
      } finally {
        ctx.dispose();
      }
    }
  } finally {
    model.dispose();
  }
});
