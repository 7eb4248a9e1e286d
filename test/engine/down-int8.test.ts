// LoadOptions.downInt8: the sparse FFN of a Q4_0 PowerInfer file with its down rows in the
// split layout, summed in 8-bit integers (rs_axpy_q4_0s_i8; kernel checked against its
// reference in test/kernels/down-i8.test.ts). Through the engine:
//   - a row's bits do not depend on the thread count or on the rows sharing its step
//     (the one-row and several-rows paths form the same groups of 16 neurons);
//   - exact and predictor mode stay within the method's rounding of the f32 sum,
//     teacher-forced (see ERR);
//   - on the emulated device the hot rows are unsplit and summed in f32: with the whole
//     FFN on it, the logits equal the f32 CPU run bit for bit, with none the int8 one.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model, sequenceBatch, type Context } from '../../server/engine/engine.js';
import type { ContextOptions } from '../../server/engine/types.js';
import { makeModel } from '../../server/cli/make-model.js';
import { describeModelFile } from '../../server/profiler/model-file.js';
import { vramCosts } from '../../server/profiler/vram-costs.js';
import { assertBatchedEqualsAlone, relErr } from './compare.js';

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-down-int8-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'pwri-q4_0.gguf');
const made = makeModel({ arch: 'llama', size: 'small', type: 'q4_0', seed: 3, out: file, sparse: true, sparsity: 0.9, predictor: 'lowrank' });

const PROMPT = [1, 17, 42, 99, 7, 300, 12, 5];
// Largest logit error (share of the logit range) of the int8 sum against the f32 one, per
// step, teacher-forced. Measured 2026-12-04 on this file: 0.7e-2 to 1.2e-2 in exact and
// predictor mode, the order of the Q8_0 rounding of a Q4_0 layer's inputs (the hybrid
// runs' tolerance, test/engine/hybrid.test.ts, is 2e-2 for the same reason).
const ERR = 3e-2;

/** Greedy generation (or, given `forced`, those tokens fed in turn): every step's logits. */
async function run(m: Model, opts: Partial<ContextOptions>, forced?: number[], n = 6): Promise<{ tokens: number[]; logits: Float32Array[] }> {
  const ctx: Context = await m.createContext({ nSeq: 1, nCtx: 64, nBatch: 64, threads: 2, sparseMaxBatch: 65536, ...opts });
  try {
    let l = await ctx.decode(sequenceBatch(PROMPT, 0, 0));
    const logits = [l];
    const tokens: number[] = [];
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let v = 1; v < l.length; v++) if (l[v] > l[best]) best = v;
      const t = forced ? forced[i] : best;
      tokens.push(t);
      l = await ctx.decode(sequenceBatch([t], 0, PROMPT.length + i));
      logits.push(l);
    }
    return { tokens, logits };
  } finally {
    ctx.dispose();
  }
}

/** The file loaded twice, with f32 and with 8-bit down sums. */
async function withBoth(fn: (f32: Model, i8: Model) => Promise<void>): Promise<void> {
  await made;
  const f32 = await Model.load(file);
  const i8 = await Model.load(file, { downInt8: true });
  try {
    await fn(f32, i8);
  } finally {
    f32.dispose();
    i8.dispose();
  }
}

test('int8 down sums: same bits for any thread count and batched or alone; within the stated error of f32', () =>
  withBoth(async (f32, i8) => {
    for (const ffnMode of ['exact', 'predictor'] as const) {
      // Teacher-forced on the f32 run's tokens: errors are compared step by step.
      const ref = await run(f32, { ffnMode });
      const one = await run(i8, { ffnMode, threads: 1 }, ref.tokens);
      const two = await run(i8, { ffnMode, threads: 2 }, ref.tokens);
      one.logits.forEach((l, i) => assert.deepEqual(l, two.logits[i], `${ffnMode}, step ${i}: 1 vs 2 threads`));
      const errs = one.logits.map((l, i) => relErr(l, ref.logits[i]));
      const err = Math.max(...errs);
      assert.ok(err > 0, `${ffnMode}: the int8 sum differs from the f32 one somewhere (else the option did nothing)`);
      assert.ok(err < ERR, `${ffnMode}: logit error ${errs.map((e) => e.toExponential(1)).join(' ')} of the range, over ${ERR}`);
    }
    // Three sequences in one step (several-rows path) against each alone (one-row path).
    const seqs = [[1, 50, 51], [1, 300, 7], [1, 9, 999]];
    for (const ffnMode of ['exact', 'predictor'] as const)
      await assertBatchedEqualsAlone(i8, seqs, { ffnMode, sparseMaxBatch: 65536 }, `${ffnMode}: `);
  }));

test('int8 down sums with the emulated device: hot rows go to the device as plain Q4_0 (f32 sums)', () =>
  withBoth(async (f32, i8) => {
    const costs = vramCosts(await describeModelFile(file), { nCtx: 64, nSeq: 1, nBatch: 64 });
    const all = costs.fixedTotal + costs.ffnTotal + 256 * costs.neuronCost.length;
    const cpuF32 = await run(f32, { ffnMode: 'predictor', device: 'cpu' });
    const cpuI8 = await run(i8, { ffnMode: 'predictor', device: 'cpu' });
    const allOn = await run(i8, { ffnMode: 'predictor', device: 'emu', vramBudget: all });
    const noneOn = await run(i8, { ffnMode: 'predictor', device: 'emu', vramBudget: costs.fixedTotal });
    allOn.logits.forEach((l, i) => assert.deepEqual(l, cpuF32.logits[i], `whole FFN on the device, step ${i}`));
    noneOn.logits.forEach((l, i) => assert.deepEqual(l, cpuI8.logits[i], `no FFN on the device, step ${i}`));
  }));
