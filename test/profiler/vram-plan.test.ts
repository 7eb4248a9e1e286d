// VRAM accounting from real tensor types, PowerInfer's fill order, and the plan's
// guarantees: within the budget to the byte, monotone, clear refusal when too small.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modelIdentity } from '../../server/profiler/model-identity.js';
import { BudgetTooSmallError, formatPlacementTable, planPlacement } from '../../server/profiler/placement-plan.js';
import { devicePiece, kvCacheBytes, parseByteSize, vramCosts, workspaceParts } from '../../server/profiler/vram-costs.js';
import { powerLawCounts, syntheticModel } from './synthetic.js';

test('neuron cost is gate row + up row + down row in the file types; every piece rounded to 256 bytes', () => {
  // n_embd 256: f16 row 512 B, q4_0 row 8 blocks x 18 = 144 B, q6_k row 210 B, q4_k row 144 B.
  const m = syntheticModel({
    nLayer: 3,
    nFf: 64,
    nEmbd: 256,
    powerinfer: true,
    ffnTypes: (l) => [['f16', 'f16', 'f16'], ['q4_0', 'q4_0', 'q4_0'], ['q4_k', 'q4_k', 'q6_k']][l] as [string, string, string],
  });
  const c = vramCosts(m, { nCtx: 16 });
  assert.deepEqual(c.neuronCost, [3 * 512, 3 * 144, 144 + 144 + 210]);
  assert.equal(c.ffnTotal, 64 * 1536 + 64 * 432 + devicePiece(64 * 498));
  assert.equal(devicePiece(64 * 498), 32000, '31872 bytes round up to the next 256');
  // Predictors fc1 {256,64} + fc2 {64,64} in f16, per layer.
  assert.equal(c.fixed.predictors, 3 * (256 * 64 * 2 + devicePiece(64 * 64 * 2)));
  assert.equal(c.fixed.attention, 3 * 4 * 256 * 256 * 2);
  assert.equal(c.fixed.output, 256 * 256 * 2);
  assert.equal(c.fixed.norms, (3 * 2 + 1) * 256 * 4);
  assert.equal(c.fixed.index, 3 * 2 * 256, 'n_ff int32 slot and neuron maps per layer');
  const parts = workspaceParts(m, 512, 64);
  assert.equal(c.fixed.workspace, parts.reduce((s, [, b]) => s + devicePiece(b), 0));
  assert.deepEqual(parts.slice(0, 3).map(([n, b]) => [n, b]), [['x', 512 * 256 * 4], ['xb', 512 * 256 * 4], ['q', 512 * 256 * 4]]);
  assert.equal(vramCosts(m, { nCtx: 16, nBatch: 8 }).fixed.workspace < c.fixed.workspace, true, 'the batch size sizes the buffers');
  assert.equal(vramCosts(m, { nCtx: 16, predictors: false }).fixed.predictors, 0, 'exact mode leaves the predictors off the device');
  assert.equal(c.cpuOnly, 256 * 256 * 2, 'token embedding stays on the CPU');
});

test('KV cache is n_ctx x n_layer x 2 x n_head_kv x head_dim x bytes; tied output counts the embedding', () => {
  const m = syntheticModel({ nLayer: 4, nFf: 32, nEmbd: 64, nHead: 8, nHeadKv: 2, tiedOutput: true });
  assert.equal(kvCacheBytes(m, { nCtx: 100 }), 100 * 4 * 2 * 2 * 8 * 2);
  assert.equal(kvCacheBytes(m, { nCtx: 100, kvBytesPerElement: 4 }), 100 * 4 * 2 * 2 * 8 * 4);
  assert.equal(kvCacheBytes(m, { nCtx: 100, nSeq: 3 }), 3 * 100 * 4 * 2 * 2 * 8 * 2);
  assert.equal(kvCacheBytes(m, { nCtx: 1 }), 2 * 256, 'K and V are a piece each');
  assert.equal(vramCosts(m, { nCtx: 1 }).fixed.output, 64 * 256 * 2);
  // A plain file's ffn_down is repacked into one f16 row per neuron (f32 for f32 files).
  const q = syntheticModel({ nLayer: 1, nFf: 32, nEmbd: 40, ffnTypes: () => ['f16', 'f16', 'q4_0'] });
  assert.equal(vramCosts(q, { nCtx: 1 }).neuronCost[0], 80 + 80 + 2 * 40);
  const f = syntheticModel({ nLayer: 1, nFf: 32, nEmbd: 40, ffnTypes: () => ['f32', 'f32', 'f32'] });
  assert.equal(vramCosts(f, { nCtx: 1 }).neuronCost[0], 160 + 160 + 4 * 40);
});

test('sizes parse with binary and decimal units', () => {
  assert.equal(parseByteSize('6GiB'), 6 * 2 ** 30);
  assert.equal(parseByteSize('512MiB'), 512 * 2 ** 20);
  assert.equal(parseByteSize('1e9'), 1e9);
  assert.equal(parseByteSize('1.5 GB'), 1.5e9);
  assert.equal(parseByteSize('800k'), 800000);
  assert.throws(() => parseByteSize('lots'), /cannot read "lots" as a size/);
  assert.throws(() => parseByteSize('-1GiB'), /cannot read/);
});

test('plans respect the budget to the byte, grow with it, and refuse a budget below the fixed part', () => {
  const m = syntheticModel({ nLayer: 4, nFf: 128, nEmbd: 64, powerinfer: true, ffnTypes: (l) => (l % 2 ? ['q4_0', 'q4_0', 'q8_0'] : ['f16', 'f16', 'f16']) });
  const identity = modelIdentity(m);
  const stats = { identity, tokens: 5000, source: 'test', counts: powerLawCounts(4, 128, 5000, 0.7, 9) };
  const costs = vramCosts(m, { nCtx: 32 });
  let prev = -1;
  for (let extra = 0; extra <= costs.ffnTotal + 1000; extra += 97) {
    const budget = costs.fixedTotal + extra;
    const plan = planPlacement({ ...m, identity }, stats, { budget, nCtx: 32 });
    assert.ok(plan.fixedTotal + plan.ffnBytes <= budget, 'within budget');
    assert.equal(plan.ffnBytes, plan.layers.reduce((s, l) => s + devicePiece(l.gpuNeurons.length * l.neuronCost), 0));
    assert.ok(plan.covered >= prev, 'monotone');
    prev = plan.covered;
  }
  assert.equal(prev, stats.counts.reduce((s, c) => s + c.reduce((a, b) => a + b, 0), 0));
  const table = formatPlacementTable(planPlacement({ ...m, identity }, stats, { budget: costs.fixedTotal + 5000, nCtx: 32 }));
  assert.match(table, /total +\d+\/512/);
  assert.match(table, /KV cache/);

  assert.throws(
    () => planPlacement({ ...m, identity }, stats, { budget: costs.fixed.attention - 1, nCtx: 32 }),
    (e: unknown) => e instanceof BudgetTooSmallError && /the attention weights no longer fit/.test(e.message) && /raise --vram-budget/.test(e.message),
  );
  assert.throws(
    () => planPlacement({ ...m, identity }, stats, { budget: costs.fixedTotal - costs.fixed.workspace - costs.fixed.index - 1, nCtx: 32 }),
    /the KV cache no longer fit.*lower --ctx/s,
  );
  assert.throws(
    () => planPlacement({ ...m, identity }, stats, { budget: costs.fixedTotal - 1, nCtx: 32 }),
    /the working buffers no longer fit.*lower --batch-size/s,
  );
  // Exactly the fixed part: legal, no neurons.
  const none = planPlacement({ ...m, identity }, stats, { budget: costs.fixedTotal, nCtx: 32 });
  assert.equal(none.ffnBytes, 0);
});
