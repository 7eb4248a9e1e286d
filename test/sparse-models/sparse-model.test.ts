// make-model --sparse: the files load as PowerInfer models, their FFN activity measured by
// the engine (dense path, activation counting, one token per decode, 300 varied tokens)
// has the requested mean sparsity and a power-law shape, and the exact predictor never
// misses an active neuron; the lowrank one misses a few. Same arguments, same bytes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeModel, type MakeModelOptions } from '../../server/cli/make-model.js';
import { Model, sequenceBatch } from '../../server/engine/engine.js';
import { readGgufHeader } from '../../server/gguf/header-reader.js';
import { powerLawProbabilities, probit } from '../../server/gguf/synthetic-sparse-design.js';
import { agreement } from './agree.js';
import { relErr } from '../engine/compare.js';
import { engineActiveSets, engineTally, predictedSets, predictorQuality, readTensorF32, sparsityReport, variedTokens } from './measure.js';

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-sparse-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
async function make(o: Partial<MakeModelOptions>): Promise<string> {
  const out = join(dir, `m${n++}.gguf`);
  await makeModel({ arch: 'llama', size: 'tiny', type: 'f16', seed: 3, out, sparse: true, ...o });
  return out;
}

// Mean sparsity over 300 tokens: the firing probabilities are met in expectation; the
// measured mean moves with the sample (a few hundredths at most at these sizes) and with
// the bias lattice (steps of ~3% of a neuron's spread).
const TOL = 0.025;

async function measure(path: string, nTokens = 300) {
  const m = await Model.load(path);
  try {
    const toks = variedTokens(nTokens, m.info.nVocab, 11);
    const truth = await engineActiveSets(m, toks);
    return { m, toks, truth, report: sparsityReport(truth, m.info.nFf) };
  } finally {
    m.dispose();
  }
}

test('probit inverts the normal CDF and the power law has the requested mean', () => {
  assert.ok(Math.abs(probit(0.975) - 1.959964) < 1e-5);
  assert.ok(Math.abs(probit(0.1) + 1.281552) < 1e-5);
  assert.ok(Math.abs(probit(0.001) + 3.090232) < 1e-5);
  const p = powerLawProbabilities(14336, 0.9, 1.5);
  assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) / p.length - 0.1) < 1e-9);
  assert.ok(p[0] > 0.9 && p[p.length - 1] < 0.01, `hottest ${p[0]}, coldest ${p[p.length - 1]}`);
});

test('llama q4_0, 90% sparse, exact predictor: sparsity, power law, recall 100%', async () => {
  const path = await make({ size: 'small', type: 'q4_0', sparsity: 0.9, predictor: 'exact' });
  const model = await Model.load(path);
  assert.equal(model.info.isPowerInfer, true);
  assert.equal(model.info.ffnActivation, 'relu_glu');
  assert.equal(model.tensors.some((t) => t.name === 'blk.0.ffn_down.weight'), false);
  const fc1 = model.tensors.find((t) => t.name === 'blk.0.fc1.weight')!;
  assert.equal(fc1.typeName, 'f16');
  assert.equal(model.tensors.find((t) => t.name === 'blk.0.ffn_gate.weight')!.typeName, 'q4_0');
  assert.equal(model.tensors.find((t) => t.name === 'output.weight')!.typeName, 'q6_K');
  model.dispose();
  const { toks, truth, report } = await measure(path);
  assert.ok(Math.abs(report.sparsity - 0.9) < TOL, `sparsity ${report.sparsity}`);
  assert.ok(report.top10Share > 0.5, `top 10% of neurons carry ${report.top10Share} of activations`);
  const q = predictorQuality(truth, await predictedSets(path, toks));
  assert.equal(q.fn, 0, `exact predictor missed ${q.fn} active neurons`);
  assert.ok(q.precision > 0.85, `precision ${q.precision}`);
});

test('bamboo f16 (dReLU), 80% sparse: sparsity and recall 100%', async () => {
  const path = await make({ arch: 'bamboo', sparsity: 0.8 });
  const { toks, truth, report, m } = await measure(path);
  assert.equal(m.info.ffnActivation, 'drelu');
  assert.ok(Math.abs(report.sparsity - 0.8) < TOL, `sparsity ${report.sparsity}`);
  assert.ok(report.top10Share > 0.4, `top 10% share ${report.top10Share}`);
  assert.equal(predictorQuality(truth, await predictedSets(path, toks)).fn, 0);
});

test('q8_0, bf16 and f32 gates keep the exact predictor exact', async () => {
  for (const type of ['q8_0', 'bf16', 'f32']) {
    const path = await make({ type, sparsity: 0.95, arch: 'bamboo' });
    const { toks, truth, report } = await measure(path, 200);
    assert.ok(Math.abs(report.sparsity - 0.95) < TOL, `${type}: sparsity ${report.sparsity}`);
    assert.equal(predictorQuality(truth, await predictedSets(path, toks)).fn, 0, type);
  }
});

test("PowerInfer-shaped predictors (rank >= 96) take the file's type and stay exact", async () => {
  for (const type of ['q4_0', 'q8_0']) {
    const path = await make({ size: 'small', type, sparsity: 0.9, predictorRank: 128 });
    const model = await Model.load(path);
    const fc1 = model.tensors.find((t) => t.name === 'blk.0.fc1.weight')!;
    const fc2 = model.tensors.find((t) => t.name === 'blk.0.fc2.weight')!;
    assert.deepEqual([fc1.typeName, fc2.typeName], [type, type]);
    assert.deepEqual([fc1.shape, fc2.shape], [[256, 128], [128, 768]]); // ne0 first: fc1 rank x n_embd, fc2 n_ff x rank
    // A token reads the file's predictor bytes, nothing expanded at load.
    assert.equal(model.info.predictorBytes, model.tensors.filter((t) => /fc[12]\.weight$/.test(t.name)).reduce((a, t) => a + t.bytes, 0));
    model.dispose();
    const { toks, truth, report } = await measure(path, 200);
    assert.ok(Math.abs(report.sparsity - 0.9) < TOL, `${type}: sparsity ${report.sparsity}`);
    const q = predictorQuality(truth, await predictedSets(path, toks));
    assert.equal(q.fn, 0, `${type}: the exact predictor missed ${q.fn} active neurons`);
    assert.ok(q.precision > 0.85, `${type}: precision ${q.precision}`);
  }
});

test('lowrank predictor: high but imperfect recall', async () => {
  const path = await make({ size: 'small', type: 'q4_0', predictor: 'lowrank' });
  const { toks, truth, report } = await measure(path);
  assert.ok(Math.abs(report.sparsity - 0.9) < TOL, `sparsity ${report.sparsity}`);
  const q = predictorQuality(truth, await predictedSets(path, toks));
  assert.ok(q.recall > 0.95 && q.recall < 1, `recall ${q.recall}`);
  assert.ok(q.precision > 0.7, `precision ${q.precision}`);
});

test('the predictor is what the file says: shapes, rank, threshold', async () => {
  const path = await make({ predictorRank: 9, threshold: -0.5, sparsity: 0.7 });
  const h = await readGgufHeader(path);
  assert.equal(h.magic, 'PWRI');
  assert.equal(h.metadata.get('powerinfer.sparse_threshold')!.type, 'f32');
  assert.equal(h.metadata.get('powerinfer.sparse_threshold')!.value, -0.5);
  const fc1 = h.tensors.find((t) => t.name === 'blk.1.fc1.weight')!;
  const fc2 = h.tensors.find((t) => t.name === 'blk.1.fc2.weight')!;
  const dt = h.tensors.find((t) => t.name === 'blk.1.ffn_down_t.weight')!;
  assert.deepEqual(fc1.dims, [64, 9]);
  assert.deepEqual(fc2.dims, [9, 192]);
  assert.deepEqual(dt.dims, [64, 192]);
  // The bias unit (row 0 of fc1) reads only dim 0.
  const w = await readTensorF32(path, h, 'blk.1.fc1.weight', [0]);
  assert.equal(w.data[0], -1);
  assert.equal(w.data.slice(1).every((v) => v === 0), true);
  const m = await Model.load(path);
  const ctx = await m.createContext({ nSeq: 1, nCtx: 8 });
  const logits = await ctx.decode(sequenceBatch([1, 5, 9], 0, 0));
  ctx.dispose();
  // Predictor mode with this rank and threshold: the exact predictor still selects every
  // active neuron, so the logits are the plain reference forward's (dense).
  const ref = await m.createContext({ nSeq: 1, nCtx: 8, backend: 'ref' });
  const want = await ref.decode(sequenceBatch([1, 5, 9], 0, 0));
  ref.dispose();
  m.dispose();
  assert.ok(relErr(logits, want) < 1e-4, `predictor mode vs reference: ${relErr(logits, want)}`);
});

test('same arguments give identical bytes; another seed does not', async () => {
  const a = await make({ type: 'q4_0', predictor: 'lowrank' });
  const b = await make({ type: 'q4_0', predictor: 'lowrank' });
  const c = await make({ type: 'q4_0', predictor: 'lowrank', seed: 4 });
  assert.equal(Buffer.compare(readFileSync(a), readFileSync(b)), 0);
  assert.notEqual(Buffer.compare(readFileSync(a), readFileSync(c)), 0);
});

test('bad sparse options are refused with the flag named', async () => {
  const out = join(dir, 'bad.gguf');
  const base = { arch: 'llama', size: 'tiny', type: 'f16', seed: 1, out };
  await assert.rejects(makeModel({ ...base, sparse: true, sparsity: 1 }), /--sparsity must be in \(0, 1\)/);
  await assert.rejects(makeModel({ ...base, sparse: true, predictor: 'perfect' }), /--predictor must be exact or lowrank/);
  await assert.rejects(makeModel({ ...base, sparse: true, predictorRank: 2 }), /--predictor-rank must be an integer/);
  await assert.rejects(makeModel({ ...base, sparsity: 0.5 }), /need --sparse/);
  await assert.rejects(makeModel({ ...base, sparse: true, tied: true }), /drop --tied/);
});

// Every FFN path of a PowerInfer file sums the down projection the same way (chunks of
// neurons, addon/src/sparse_ffn_common.h) and computes each h with the same dot
// products, so exact mode, and predictor mode with a predictor that misses nothing,
// give the dense logits bit for bit.
test('exact predictor: predictor-mode decoding equals dense decoding bit for bit (F16, F32, Q4_0)', async () => {
  for (const [arch, type] of [['llama', 'f16'], ['bamboo', 'f32'], ['llama', 'q4_0']] as const) {
    const path = await make({ arch, type, size: 'small' });
    const a = await agreement(path, variedTokens(6, 4000, 5), 40);
    assert.equal(a.top1, a.steps, `${arch} ${type}: greedy tokens differ`);
    assert.equal(a.maxRelErr, 0, `${arch} ${type}: logits differ by ${a.maxRelErr} of their scale`);
    const e = await agreement(path, variedTokens(6, 4000, 5), 40, 'exact');
    assert.equal(e.maxRelErr, 0, `${arch} ${type}, exact mode: logits differ by ${e.maxRelErr} of their scale`);
    // The predictor computes only a few more neurons than fire (fp), never fewer.
    assert.ok(a.predictorActive > 0.08 && a.predictorActive < 0.13, `active ${a.predictorActive}`);
  }
});

test("the engine's predictor tally agrees with the file's predictor computed here", async () => {
  const path = await make({ type: 'q4_0', predictor: 'lowrank' });
  const m = await Model.load(path);
  engineTally.tp = engineTally.fp = engineTally.fn = 0;
  const toks = variedTokens(150, m.info.nVocab, 2);
  const truth = await engineActiveSets(m, toks);
  m.dispose();
  const q = predictorQuality(truth, await predictedSets(path, toks));
  assert.ok(q.fn > 0, 'the lowrank predictor should miss some neurons');
  // Same decisions up to values within rounding of the threshold.
  const close = (a: number, b: number) => Math.abs(a - b) <= Math.max(3, 0.005 * b);
  assert.ok(close(engineTally.tp, q.tp) && close(engineTally.fp, q.fp) && close(engineTally.fn, q.fn), `engine ${JSON.stringify(engineTally)} vs ${JSON.stringify(q)}`);
});

// One row (generation) runs the fused one-row kernel; several rows the three-phase one.
// Both sum each row's down projection in the same chunks of 512 neurons, so a row gives
// the same bits alone or in a batch, for any thread count. 70% sparsity on the small
// shape (768 neurons): ~230 active neurons a row, spread over both chunks.
test('predictor mode: a row alone == the same row in a batch, for 1, 2 and 3 threads (bit for bit)', async () => {
  const path = await make({ arch: 'bamboo', type: 'q4_0', size: 'small', sparsity: 0.7 });
  const m = await Model.load(path);
  const nv = m.info.nVocab;
  const seqs = [variedTokens(5, nv, 21), variedTokens(5, nv, 22), variedTokens(5, nv, 23)];
  let first: Float32Array[][] | undefined;
  try {
    for (const threads of [1, 2, 3]) {
      const alone: Float32Array[][] = [];
      for (const s of seqs) {
        const ctx = await m.createContext({ nSeq: 1, nCtx: 16, ffnMode: 'predictor', threads });
        const out: Float32Array[] = [];
        for (let p = 0; p < s.length; p++) out.push(await ctx.decode(sequenceBatch([s[p]], 0, p)));
        alone.push(out);
        ctx.dispose();
      }
      first ??= alone;
      assert.deepEqual(alone, first, `${threads} threads vs 1`);
      const ctx = await m.createContext({ nSeq: 3, nCtx: 16, ffnMode: 'predictor', threads });
      for (let p = 0; p < 5; p++) {
        const l = await ctx.decode({
          tokens: Int32Array.from(seqs.map((s) => s[p])),
          positions: Int32Array.from([p, p, p]),
          seqIds: Int32Array.from([0, 1, 2]),
          wantLogits: Uint8Array.from([1, 1, 1]),
        });
        for (let s = 0; s < 3; s++) assert.deepEqual(l.subarray(s * nv, (s + 1) * nv), alone[s][p], `${threads} threads, seq ${s} pos ${p}`);
      }
      const sp = ctx.sparsity();
      assert.equal(sp.sparseSteps, 5);
      const active = sp.avgActiveRatio.reduce((a, b) => a + b, 0) / sp.avgActiveRatio.length;
      assert.ok(m.info.nFf > 512 && active * m.info.nFf > 100, `want active neurons over more than one 512-neuron chunk (n_ff ${m.info.nFf}, active ${active})`);
      ctx.dispose();
    }
  } finally {
    m.dispose();
  }
});

test('sparseMaxBatch: every step size runs sparse on PowerInfer files by default; a limit sends longer steps to dense', async () => {
  const path = await make({ type: 'q4_0', size: 'small' });
  const m = await Model.load(path);
  try {
    const prompt = variedTokens(100, m.info.nVocab, 4); // 100 rows: two sparse kernel calls (64 + 36)
    const auto = await m.createContext({ nSeq: 1, nCtx: 128, nBatch: 128 });
    assert.equal(auto.sparsity().sparseMaxBatch, 65536);
    const whole = await auto.decode(sequenceBatch(prompt, 0, 0));
    assert.deepEqual([auto.sparsity().sparseSteps, auto.sparsity().denseSteps], [1, 0]);
    auto.dispose();
    // The same prompt one token per step: the same last logits, bit for bit.
    const stepped = await m.createContext({ nSeq: 1, nCtx: 128 });
    let last: Float32Array = new Float32Array(0);
    for (let p = 0; p < prompt.length; p++) last = await stepped.decode(sequenceBatch([prompt[p]], 0, p));
    stepped.dispose();
    assert.deepEqual(whole, last);
    const limited = await m.createContext({ nSeq: 1, nCtx: 128, nBatch: 128, sparseMaxBatch: 99 });
    await limited.decode(sequenceBatch(prompt, 0, 0));
    assert.deepEqual([limited.sparsity().sparseSteps, limited.sparsity().denseSteps], [0, 1]);
    limited.dispose();
    await assert.rejects(m.createContext({ nSeq: 1, nCtx: 8, sparseMaxBatch: 65537 }), /sparse_max_batch = 65537 is outside \[0, 65536\]/);
  } finally {
    m.dispose();
  }
});
