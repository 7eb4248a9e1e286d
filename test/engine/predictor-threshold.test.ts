// The predictor's threshold rule through the engine: a neuron whose predictor score is
// exactly the threshold is active (score >= threshold, PowerInfer's rule). The file's
// predictor is all zeros, so every score is exactly 0: at threshold 0 (or below) every
// neuron is active and the predictor FFN is the whole FFN; just above 0 none is, and the
// FFN adds nothing. Checked for one row (the fused score-and-list path) and for a batch
// of rows (the per-row mask path).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Model, sequenceBatch } from '../../server/engine/engine.js';
import { writeGguf } from '../../server/gguf/writer.js';
import { testDir } from './models.js';
import { D, FF, tinyParts, toSpec } from './spec.js';
import { relErr } from './compare.js';

const RANK = 8;
const PROMPT = [1, 3, 4, 5, 6, 7];

async function zeroPredictorModel(): Promise<string> {
  const p = tinyParts();
  p.metadata.set('powerinfer.sparse_threshold', { type: 'f32', value: 0 });
  const zeros = (n: number) => new Uint8Array(new Float32Array(n).buffer);
  p.tensors.push({ name: 'blk.0.fc1.weight', dims: [D, RANK], type: 'f32', data: zeros(D * RANK) });
  p.tensors.push({ name: 'blk.0.fc2.weight', dims: [RANK, FF], type: 'f32', data: zeros(RANK * FF) });
  const path = join(testDir, 'pwri-zero-predictor.gguf');
  await writeGguf(path, toSpec(p, { magic: 'PWRI' }));
  return path;
}

/** Logits of PROMPT decoded one token a step (one row) and as one batch of rows. */
async function run(m: Model, ffnMode: 'dense' | 'predictor', sparseThreshold?: number): Promise<{ rows1: Float32Array[]; batch: Float32Array }> {
  const ctx = await m.createContext({ nSeq: 2, nCtx: 16, ffnMode, sparseThreshold, threads: 2 });
  try {
    const rows1: Float32Array[] = [];
    for (let i = 0; i < PROMPT.length; i++) rows1.push(await ctx.decode(sequenceBatch([PROMPT[i]], 0, i)));
    const batch = await ctx.decode(sequenceBatch(PROMPT, 1, 0, true));
    const sp = ctx.sparsity();
    if (ffnMode === 'predictor') assert.equal(sp.sparseSteps, PROMPT.length + 1, 'every step took the sparse path');
    return { rows1, batch };
  } finally {
    ctx.dispose();
  }
}

test('a predictor score exactly at the threshold is active (>=), one row and a batch', async () => {
  const m = await Model.load(await zeroPredictorModel());
  try {
    assert.equal(m.info.ffnActivation, 'relu_glu');
    assert.equal(m.info.sparseThreshold, 0);
    const dense = await run(m, 'dense');
    const atFile = await run(m, 'predictor'); // the file's threshold, 0
    const atZero = await run(m, 'predictor', 0);
    const below = await run(m, 'predictor', -1e-30);
    const above = await run(m, 'predictor', 1e-30);
    const nv = m.info.nVocab;
    for (let i = 0; i < PROMPT.length; i++) {
      // Every neuron active: the whole FFN, as dense computes it (to rounding).
      assert.ok(relErr(atZero.rows1[i], dense.rows1[i]) < 1e-5, `row ${i}: ${relErr(atZero.rows1[i], dense.rows1[i])}`);
      assert.deepEqual(atZero.rows1[i], below.rows1[i], `row ${i}: at the threshold == below it`);
      assert.deepEqual(atFile.rows1[i], atZero.rows1[i]);
      // The control: just above the score no neuron is active, and it shows.
      assert.ok(relErr(above.rows1[i], dense.rows1[i]) > 1e-2, `row ${i}: no active neuron must change the logits`);
      const b = (r: { batch: Float32Array }) => r.batch.subarray(i * nv, (i + 1) * nv);
      assert.ok(relErr(b(atZero), b(dense)) < 1e-5, `batch row ${i}: ${relErr(b(atZero), b(dense))}`);
      assert.deepEqual(b(atZero), b(below), `batch row ${i}: at the threshold == below it`);
      assert.ok(relErr(b(above), b(dense)) > 1e-2, `batch row ${i}: the control`);
    }
  } finally {
    m.dispose();
  }
});
