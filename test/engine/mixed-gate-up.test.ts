// Sparse against dense on files whose ffn_gate and ffn_up are stored in different types
// (the sparse path then cannot use one activation format for both: the gate's rows need
// their own conversion). A PowerInfer file with an all-zero predictor at threshold 0
// makes every neuron active, so predictor mode computes the whole FFN and must equal
// dense, one row at a time and for a batch of rows; exact mode must equal dense too.
// Reading the gate rows with the up matrix's type, or one half's activations for the
// other, gives a different FFN, far outside the tolerances below.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Model, sequenceBatch } from '../../server/engine/engine.js';
import type { FfnMode } from '../../server/engine/types.js';
import { writeGguf } from '../../server/gguf/writer.js';
import { resolveGgmlType } from '../../server/gguf/constants.js';
import { quantizerFor } from '../../server/gguf/quantize.js';
import { testDir } from './models.js';
import { D, FF, tinyParts, toSpec } from './spec.js';
import { relErr } from './compare.js';

const RANK = 8;
const PROMPT = [1, 3, 4, 5, 6, 7];

async function mixedModel(gateType: string, upType: string): Promise<string> {
  const p = tinyParts();
  p.metadata.set('powerinfer.sparse_threshold', { type: 'f32', value: 0 });
  for (const [name, type] of [['blk.0.ffn_gate.weight', gateType], ['blk.0.ffn_up.weight', upType]]) {
    const t = p.tensors.find((x) => x.name === name)!;
    const f32 = new Float32Array((t.data as Uint8Array).slice().buffer);
    const q = await quantizerFor(resolveGgmlType(type));
    t.data = q(f32).slice();
    t.type = type;
  }
  const zeros = (n: number) => new Uint8Array(new Float32Array(n).buffer);
  p.tensors.push({ name: 'blk.0.fc1.weight', dims: [D, RANK], type: 'f32', data: zeros(D * RANK) });
  p.tensors.push({ name: 'blk.0.fc2.weight', dims: [RANK, FF], type: 'f32', data: zeros(RANK * FF) });
  const path = join(testDir, `mixed-${gateType}-${upType}.gguf`);
  await writeGguf(path, toSpec(p, { magic: 'PWRI' }));
  return path;
}

async function run(m: Model, ffnMode: FfnMode): Promise<Float32Array[]> {
  const ctx = await m.createContext({ nSeq: 2, nCtx: 16, ffnMode, threads: 2 });
  try {
    const out: Float32Array[] = [];
    for (let i = 0; i < PROMPT.length; i++) out.push(await ctx.decode(sequenceBatch([PROMPT[i]], 0, i)));
    const batch = await ctx.decode(sequenceBatch(PROMPT, 1, 0, true));
    const nv = m.info.nVocab;
    for (let i = 0; i < PROMPT.length; i++) out.push(batch.slice(i * nv, (i + 1) * nv));
    if (ffnMode !== 'dense') assert.equal(ctx.sparsity().sparseSteps, PROMPT.length + 1, `${ffnMode}: every step sparse`);
    return out;
  } finally {
    ctx.dispose();
  }
}

// Quantised halves: dense multiplies them with Q8_0 activations as the sparse rows do,
// but sums in another order; measured differences are far below these.
const CASES: [string, string, number][] = [
  ['f16', 'f32', 1e-4],
  ['f32', 'f16', 1e-4],
  ['q8_0', 'f32', 2e-2],
  ['f32', 'q4_0', 2e-2],
  ['q4_0', 'q8_0', 2e-2],
];

for (const [gate, up, tol] of CASES) {
  test(`gate ${gate}, up ${up}: predictor mode with every neuron active and exact mode equal dense`, async () => {
    const m = await Model.load(await mixedModel(gate, up));
    try {
      assert.equal(m.info.ffnActivation, 'relu_glu');
      const dense = await run(m, 'dense');
      const predictor = await run(m, 'predictor');
      const exact = await run(m, 'exact');
      dense.forEach((d, i) => {
        const what = i < PROMPT.length ? `row ${i} alone` : `row ${i - PROMPT.length} in a batch`;
        assert.ok(relErr(predictor[i], d) < tol, `predictor, ${what}: ${relErr(predictor[i], d)}`);
        assert.ok(relErr(exact[i], d) < tol, `exact, ${what}: ${relErr(exact[i], d)}`);
      });
    } finally {
      m.dispose();
    }
  });
}
