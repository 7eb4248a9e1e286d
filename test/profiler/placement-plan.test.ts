// planPlacement on a model small enough to add up by hand: 2 layers of 8 f16 neurons at
// 96 bytes each (one 768-byte piece per layer); fixed part 24320 bytes = attention 4096,
// norms 1280, output 8192, KV cache 512, neuron index 1024, working buffers 9216. Which
// piece a budget runs out at, the capacity the solver gets, group bundles, the table.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BudgetTooSmallError, chooseInGroups, formatPlacementTable, planPlacement } from '../../server/profiler/placement-plan.js';
import { modelIdentity } from '../../server/profiler/model-identity.js';
import { syntheticModel } from './synthetic.js';

const m = syntheticModel({ nLayer: 2, nFf: 8, nEmbd: 16, nHead: 2 });
const model = { ...m, identity: modelIdentity(m) };
const stats = { identity: model.identity, tokens: 1, source: 's', counts: [Float64Array.of(80, 70, 60, 50, 40, 30, 20, 10), Float64Array.of(75, 0, 0, 0, 0, 0, 0, 5)] };
const plan = (budget: number, extra = {}) => planPlacement(model, stats, { budget, nCtx: 4, nBatch: 2, ...extra });
const FIXED = 24320;
const parts = 'attention weights 4.00 KiB, norms 1.25 KiB, output matrix 8.00 KiB, KV cache 512 B, neuron index 1.00 KiB, working buffers 9.00 KiB';

test('a budget below the fixed part names the piece that no longer fits and what to change', () => {
  const refused = (budget: number, piece: string, after: string, hint: string) =>
    assert.throws(() => plan(budget), (e: Error) => {
      assert.ok(e instanceof BudgetTooSmallError);
      assert.match(e.message, new RegExp(`^VRAM budget [^(]+ \\(${budget} bytes\\) is too small: the ${piece} no longer fit after ${after} of earlier parts\\. `));
      assert.ok(e.message.endsWith(`The fixed part needs 23.75 KiB (24320 bytes: ${parts}) before any FFN neuron; raise --vram-budget${hint}`), e.message);
      return true;
    });
  refused(4095, 'attention weights', '0 B', '');

  refused(4096 + 1280 + 8192 + 511, 'KV cache', '13.25 KiB', ' or lower --ctx');
  refused(FIXED - 9216 - 1, 'neuron index', '13.75 KiB', '');
  refused(FIXED - 1, 'working buffers', '14.75 KiB', ' or lower --batch-size');
  const p = plan(FIXED);
  assert.deepEqual(p.layers.map((l) => l.gpuNeurons.length), [0, 0]);
  assert.equal(p.ffnBytes, 0);
});

test('the solver gets the capacity less 256 bytes per layer, unless every neuron fits', () => {
  const whole = plan(FIXED + 1536);
  assert.deepEqual(whole.layers.map((l) => l.gpuNeurons.length), [8, 8]);
  assert.equal(whole.ffnBytes, 1536);
  // One byte short: the solver gets 1535 - 2 x 256 = 1023 bytes, 10 neurons: the 10 hottest.
  const short = plan(FIXED + 1535);
  assert.deepEqual(short.layers.map((l) => [...l.gpuNeurons]), [[0, 1, 2, 3, 4, 5, 6, 7], [0, 7]]);
  assert.equal(short.ffnBytes, 768 + 256);
  assert.deepEqual(short.layers.map((l) => [l.bytes, l.neuronCost, l.covered, l.total, l.nFf]), [[768, 96, 360, 360, 8], [256, 96, 80, 80, 8]]);
  assert.deepEqual([short.covered, short.total, short.fixedTotal, short.ffnTotal, short.budget, short.nCtx, short.nSeq], [440, 440, FIXED, 1536, FIXED + 1535, 4, 1]);
  assert.equal(plan(FIXED + 1535, { nSeq: 1 }).nSeq, 1);
  // Capacity below one piece per layer: nothing placed (never a negative solver budget).
  assert.equal(plan(FIXED + 300).ffnBytes, 0);
});

test('groups: a layer takes whole bundles of its hottest neurons, or all of them', () => {
  // Layer 0 hottest first: 0 (5), 2 (4), 3 (2), 1 (1): bundles of 2 sum to 9 and 3.
  assert.deepEqual(chooseInGroups([Float64Array.of(5, 1, 4, 2)], [1], 3, 2).map((x) => [...x]), [[0, 2]]);
  assert.deepEqual(chooseInGroups([Float64Array.of(5, 1, 4, 2)], [1], 4, 2).map((x) => [...x]), [[0, 1, 2, 3]]);
  // Equal counts: lower ids first. A partial last bundle costs a whole one.
  assert.deepEqual(chooseInGroups([Float64Array.of(3, 3, 3, 3, 3)], [1], 4, 2).map((x) => [...x]), [[0, 1, 2, 3]]);
  assert.deepEqual(chooseInGroups([Float64Array.of(3, 3, 3, 3, 3)], [1], 5, 2).map((x) => [...x]), [[0, 1, 2, 3]]);
  assert.deepEqual(chooseInGroups([Float64Array.of(3, 3, 3, 3, 3)], [1], 6, 2).map((x) => [...x]), [[0, 1, 2, 3, 4]]);
  // A budget for every bundle takes every neuron, also those that never fired (two costs: 4 x 2 + 2 x 2 bytes per bundle pair).
  assert.deepEqual(chooseInGroups([Float64Array.of(1, 0, 0, 0), Float64Array.of(1, 0, 0, 0)], [2, 1], 12, 2).map((x) => [...x]), [[0, 1, 2, 3], [0, 1, 2, 3]]);
  // Bundles compete across layers by their activation sums: the hotter layer's bundle wins.
  assert.deepEqual(chooseInGroups([Float64Array.of(1, 1, 1, 1), Float64Array.of(9, 9, 9, 9)], [1, 1], 2, 2).map((x) => [...x]), [[], [0, 1]]);
  // Group 1 is the plain solver.
  assert.deepEqual(chooseInGroups([Float64Array.of(1, 9, 5)], [2], 4, 1).map((x) => [...x]), [[1, 2]]);
  const g = plan(FIXED + 1535, { group: 4 });
  assert.deepEqual(g.layers.map((l) => l.gpuNeurons.length), [8, 0]);
});

test('the table `place` prints', () => {
  assert.deepEqual(formatPlacementTable(plan(FIXED + 1536)).split('\n'), [
    'VRAM budget 25.25 KiB; context 4 tokens x 1 sequence(s)',
    '  attention weights      4.00 KiB',
    '  norms                  1.25 KiB',
    '  output matrix          8.00 KiB',
    '  KV cache                  512 B',
    '  neuron index           1.00 KiB',
    '  working buffers        9.00 KiB',
    '  fixed total           23.75 KiB',
    '',
    'layer  neurons on GPU        bytes  B/neuron  activations served',
    '    0            8/8        768 B        96              100.0%',
    '    1            8/8        768 B        96              100.0%',
    'total          16/16     1.50 KiB                        100.0%',
    'FFN on GPU: 100.0% of its bytes; VRAM used 25.25 KiB of 25.25 KiB (0 bytes unused)',
  ]);
  const t = formatPlacementTable(plan(FIXED + 1535)).split('\n');
  assert.equal(t[t.length - 1], 'FFN on GPU: 66.7% of its bytes; VRAM used 24.75 KiB of 25.25 KiB (511 bytes unused)');
  // Three sequences: the KV cache triples (512 -> 1536 bytes).
  const three = formatPlacementTable(plan(FIXED + 1024 + 1536, { nSeq: 3 })).split('\n');
  assert.equal(three[0], 'VRAM budget 26.25 KiB; context 4 tokens x 3 sequence(s)');
  assert.equal(three[4], '  KV cache               1.50 KiB');
  // A layer that never fired shows "-" for the share served.
  const idle = planPlacement(model, { ...stats, counts: [stats.counts[0], new Float64Array(8)] }, { budget: FIXED + 1536, nCtx: 4, nBatch: 2 });
  assert.match(formatPlacementTable(idle).split('\n')[11], /^ {4}1 +8\/8 +768 B +96 +-$/);
});

test('a model with predictors: they are the second fixed piece, named in the refusal and the table', () => {
  const pm = syntheticModel({ nLayer: 2, nFf: 8, nEmbd: 16, nHead: 2, powerinfer: true });
  const pmodel = { ...pm, identity: modelIdentity(pm) };
  const pplan = (budget: number) => planPlacement(pmodel, stats, { budget, nCtx: 4, nBatch: 2 });
  // Attention 4096 bytes, then the predictors: fc1 {16, 64} and fc2 {64, 8} in f16 per layer, 2048 + 1024.
  assert.throws(() => pplan(4096 + 6143), /too small: the predictors no longer fit after 4\.00 KiB of earlier parts\. .*\(\d+ bytes: attention weights 4\.00 KiB, predictors 6\.00 KiB, norms/);
  const table = formatPlacementTable(pplan(1 << 20)).split('\n');
  assert.equal(table[2], '  predictors             6.00 KiB');
});

test('the refusal names a part the model has: without attention weights (and a budget below zero) the norms', () => {
  const bare = { ...model, tensors: model.tensors.filter((t) => !/attn_(q|k|v|output)\./.test(t.name)) };
  assert.throws(() => planPlacement(bare, stats, { budget: -1, nCtx: 4, nBatch: 2 }), /too small: the norms no longer fit after 0 B of earlier parts\. /);
});
