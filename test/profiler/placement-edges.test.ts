// Edges of the hot-neuron solver that its optimality tests (placement.test.ts) cannot see:
// the exact ratio comparison past 2^53, the documented tie rules, the layer order not
// mattering, a model that fits whole, empty layers. placement-search-limit.test.ts has
// where the search refuses.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseHotNeurons, ratioGreater } from '../../server/profiler/placement.js';
import { seededRandom } from './synthetic.js';

const ids = (r: { gpuNeurons: Uint32Array[] }) => r.gpuNeurons.map((x) => [...x]);

test('ratioGreater is exact where the products pass 2^53 and a double would round them equal', () => {
  const a = 2 ** 52 + 3; // a * 2 = 3*2^52 + 9 rounds to 3*2^52 + 8 as a double
  const b = 3 * 2 ** 51 + 4; // b * 2 = 3*2^52 + 8 exactly
  assert.equal(a * 3 > b * 2, false, 'the premise: doubles call these equal');
  assert.equal(ratioGreater(a, 2, b, 3), true); // 3a > 2b by 1
  assert.equal(ratioGreater(b, 3, a, 2), false);
  // Equal ratios are not greater, on both sides of 2^53.
  assert.equal(ratioGreater(2 ** 52, 4, 2 ** 51, 2), false);
  assert.equal(ratioGreater(2 ** 51, 2, 2 ** 52, 4), false);
  assert.equal(ratioGreater(6, 3, 4, 2), false);
  assert.equal(ratioGreater(7, 3, 4, 2), true);
  assert.equal(ratioGreater(5, 3, 4, 2), false);
});

test('equally hot neurons of one cost: lower layers first, then lower ids', () => {
  const counts = [Float64Array.of(1, 1, 1), Float64Array.of(1, 1, 1), Float64Array.of(1, 1)];
  for (const [budget, want] of [
    [1, [[0], [], []]],
    [2, [[0, 1], [], []]],
    [4, [[0, 1, 2], [0], []]],
    [7, [[0, 1, 2], [0, 1, 2], [0]]],
  ] as const) {
    assert.deepEqual(ids(chooseHotNeurons(counts, [1, 1, 1], budget)), want, `budget ${budget}`);
  }
});

test('one cost for all layers: the hottest floor(budget / cost), ties to lower layers then lower ids', () => {
  const rand = seededRandom(9);
  for (let t = 0; t < 300; t++) {
    const L = 1 + Math.floor(rand() * 4);
    const counts = Array.from({ length: L }, () => Float64Array.from({ length: Math.floor(rand() * 12) }, () => Math.floor(rand() * 3)));
    const cost = 1 + Math.floor(rand() * 3);
    const n = counts.reduce((s, c) => s + c.length, 0);
    const budget = Math.floor(rand() * (n + 2) * cost);
    // Reference: every neuron as (count, layer, id), sorted, the first floor(budget / cost).
    const all = counts.flatMap((c, l) => [...c].map((v, i) => ({ v, l, i })));
    all.sort((a, b) => b.v - a.v || a.l - b.l || a.i - b.i);
    const want = counts.map(() => [] as number[]);
    for (const { l, i } of all.slice(0, Math.floor(budget / cost))) want[l].push(i);
    want.forEach((w) => w.sort((a, b) => a - b));
    const r = chooseHotNeurons(counts, counts.map(() => cost), budget);
    assert.deepEqual(ids(r), want, `case ${t}: ${JSON.stringify({ counts: counts.map((c) => [...c]), cost, budget })}`);
  }
});

test('numbering the layers differently only renumbers the answer (distinct counts, mixed costs)', () => {
  const rand = seededRandom(5);
  for (let t = 0; t < 300; t++) {
    const L = 2 + Math.floor(rand() * 3);
    const lens = Array.from({ length: L }, () => 1 + Math.floor(rand() * 4));
    // Distinct counts (no ties between neurons) from a small range, so that different
    // subsets often cover the same total: the case where solver order shows.
    const pool = Array.from({ length: lens.reduce((a, b) => a + b, 0) }, (_, i) => i + 1);
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    let at = 0;
    const counts = lens.map((n) => Float64Array.from(pool.slice(at, (at += n))));
    const costs = counts.map(() => [1, 2, 3, 5][Math.floor(rand() * 4)]);
    const all = counts.reduce((s, c, l) => s + c.length * costs[l], 0);
    const budget = Math.floor(rand() * all);
    const perm = Array.from({ length: L }, (_, i) => i).reverse();
    const a = chooseHotNeurons(counts, costs, budget);
    const b = chooseHotNeurons(perm.map((l) => counts[l]), perm.map((l) => costs[l]), budget);
    assert.deepEqual(perm.map((l) => [...a.gpuNeurons[l]]), ids(b), `case ${t}: ${JSON.stringify({ counts: counts.map((c) => [...c]), costs, budget })}`);
  }
});

test('a model that fits whole goes to the GPU whole, never-active neurons included', () => {
  const counts = [Float64Array.of(3, 0), Float64Array.of(0, 2, 0)];
  const costs = [2, 5];
  for (const budget of [2 * 2 + 3 * 5, 100]) {
    const r = chooseHotNeurons(counts, costs, budget);
    assert.deepEqual(ids(r), [[0, 1], [0, 1, 2]], `budget ${budget}`);
    assert.equal(r.bytes, 19);
    assert.equal(r.covered, 5);
  }
});

test('a layer without neurons takes no part, whatever its cost', () => {
  const counts = [Float64Array.of(5, 3), Float64Array.of(4), new Float64Array(0)];
  // A huge odd cost on the empty layer would blow up the exact search's window if it
  // were treated as a cost group.
  const r = chooseHotNeurons(counts, [2, 3, 1_000_003], 6);
  assert.deepEqual(ids(r), [[0], [0], []]);
  assert.equal(r.covered, 9);
});

test('the exact search starts from the best-ratio greedy: far from it, its window could not reach the optimum', () => {
  // 20 hot neurons at 1 byte, 20 cold ones at 2 bytes, 20 bytes: all hot ones. A start that
  // filled the budget with cold neurons would be 10 neurons away, past the search's window
  // (5 neurons of cost 1, 2 of cost 2), in whichever order the cost groups come.
  const hot = new Float64Array(20).fill(100);
  const cold = new Float64Array(20).fill(1);
  for (const [counts, costs, hotLayer] of [[[hot, cold], [1, 2], 0], [[cold, hot], [2, 1], 1]] as const) {
    const r = chooseHotNeurons([...counts], [...costs], 20);
    assert.equal(r.covered, 2000);
    assert.equal(r.bytes, 20);
    assert.equal(r.gpuNeurons[hotLayer].length, 20);
    assert.equal(r.gpuNeurons[1 - hotLayer].length, 0);
  }
});
