// The hot-neuron solver against independent exact references: exhaustive search over
// every subset of neurons (tiny cases) and a 0/1 knapsack DP over bytes (larger ones).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseHotNeurons, type HotNeuronChoice } from '../../server/profiler/placement.js';
import { seededRandom } from './synthetic.js';

function subsetOptimum(counts: Float64Array[], costs: number[], budget: number): number {
  const items: [number, number][] = [];
  counts.forEach((c, l) => c.forEach((v) => items.push([v, costs[l]])));
  let best = 0;
  for (let mask = 0; mask < 1 << items.length; mask++) {
    let cov = 0;
    let bytes = 0;
    for (let i = 0; i < items.length; i++) {
      if (mask & (1 << i)) {
        cov += items[i][0];
        bytes += items[i][1];
      }
    }
    if (bytes <= budget && cov > best) best = cov;
  }
  return best;
}

function knapsackOptimum(counts: Float64Array[], costs: number[], budget: number): number {
  const dp = new Float64Array(budget + 1);
  counts.forEach((c, l) => {
    for (const v of c) {
      for (let b = budget; b >= costs[l]; b--) dp[b] = Math.max(dp[b], dp[b - costs[l]] + v);
    }
  });
  return dp[budget];
}

/** Everything a valid answer must satisfy, whatever its optimality. */
function checkConsistent(r: HotNeuronChoice, counts: Float64Array[], costs: number[], budget: number): void {
  let bytes = 0;
  let covered = 0;
  r.gpuNeurons.forEach((ids, l) => {
    for (let j = 0; j < ids.length; j++) {
      assert.ok(ids[j] < counts[l].length, 'id in range');
      if (j > 0) assert.ok(ids[j] > ids[j - 1], 'ids strictly ascending');
      covered += counts[l][ids[j]];
    }
    bytes += ids.length * costs[l];
  });
  assert.equal(r.bytes, bytes);
  assert.equal(r.covered, covered);
  assert.ok(r.bytes <= budget, `bytes ${r.bytes} within budget ${budget}`);
}

function randomCase(rand: () => number, maxLayers: number, maxFf: number, costChoices: number[]) {
  const L = 1 + Math.floor(rand() * maxLayers);
  const counts = Array.from({ length: L }, () => {
    const n = 1 + Math.floor(rand() * maxFf);
    // Small value range so ties are common (ties are where sloppy solvers go wrong).
    return Float64Array.from({ length: n }, () => Math.floor(rand() * 12));
  });
  const costs = counts.map(() => costChoices[Math.floor(rand() * costChoices.length)]);
  return { counts, costs };
}

test('greedy by count per byte is not enough: the solver finds the exact optimum', () => {
  // Greedy by ratio takes the 10 (ratio 3.33) and has 1 byte left; the optimum is 6 + 6.
  const counts = [Float64Array.of(10), Float64Array.of(6, 6)];
  const r = chooseHotNeurons(counts, [3, 2], 4);
  assert.equal(r.covered, 12);
  assert.deepEqual(r.gpuNeurons.map((x) => [...x]), [[], [0, 1]]);
});

test('matches exhaustive search over all neuron subsets (600 random small cases)', () => {
  const rand = seededRandom(42);
  for (let t = 0; t < 600; t++) {
    const { counts, costs } = randomCase(rand, 4, 4, [1, 2, 3, 4, 5, 6, 7, 9]);
    const n = counts.reduce((s, c) => s + c.length, 0);
    if (n > 13) continue;
    const totalCost = counts.reduce((s, c, l) => s + c.length * costs[l], 0);
    const budget = Math.floor(rand() * (totalCost + 3));
    const r = chooseHotNeurons(counts, costs, budget);
    checkConsistent(r, counts, costs, budget);
    assert.equal(r.covered, subsetOptimum(counts, costs, budget), `case ${t}: ${JSON.stringify({ counts: counts.map((c) => [...c]), costs, budget })}`);
  }
});

test('matches a 0/1 knapsack DP on larger layers with realistic cost ratios (300 cases)', () => {
  const rand = seededRandom(7);
  for (let t = 0; t < 300; t++) {
    // Costs in the proportions of real per-neuron costs (e.g. Q4_0 vs F16 vs Q4_K/Q6_K mixes),
    // scaled down so the reference DP over bytes stays cheap.
    const { counts, costs } = randomCase(rand, 5, 40, [9, 12, 14, 21, 36]);
    const totalCost = counts.reduce((s, c, l) => s + c.length * costs[l], 0);
    const budget = Math.floor(rand() * totalCost);
    const r = chooseHotNeurons(counts, costs, budget);
    checkConsistent(r, counts, costs, budget);
    assert.equal(r.covered, knapsackOptimum(counts, costs, budget), `case ${t}`);
  }
});

test('more VRAM never serves fewer activations, and the budget is respected to the byte', () => {
  const rand = seededRandom(3);
  const { counts, costs } = { counts: randomCase(rand, 4, 30, [1]).counts, costs: [] as number[] };
  counts.forEach((_, l) => costs.push([10, 14, 25, 14][l % 4]));
  const totalCost = counts.reduce((s, c, l) => s + c.length * costs[l], 0);
  let prev = -1;
  for (let budget = 0; budget <= totalCost + 5; budget++) {
    const r = chooseHotNeurons(counts, costs, budget);
    checkConsistent(r, counts, costs, budget);
    assert.ok(r.covered >= prev, `budget ${budget}: ${r.covered} < ${prev}`);
    prev = r.covered;
  }
  assert.equal(prev, counts.reduce((s, c) => s + c.reduce((a, b) => a + b, 0), 0));
});

test('equal costs: exactly the globally hottest neurons', () => {
  const counts = [Float64Array.of(5, 1, 9), Float64Array.of(7, 7, 0)];
  const r = chooseHotNeurons(counts, [8, 8], 8 * 3 + 7);
  assert.equal(r.covered, 9 + 7 + 7);
  assert.deepEqual(r.gpuNeurons.map((x) => [...x]), [[2], [0, 1]]);
});

test('a 7B-sized problem with two neuron costs solves quickly and beats or ties greedy', () => {
  const rand = seededRandom(11);
  const L = 32;
  const nFf = 11008;
  const counts = Array.from({ length: L }, () =>
    Float64Array.from({ length: nFf }, () => Math.floor(100000 * Math.pow(rand(), 6))),
  );
  // Q4_K gate/up with Q6_K down on some layers (7968 B/neuron), all Q4_K elsewhere (6912).
  const costs = counts.map((_, l) => (l % 3 === 0 ? 7968 : 6912));
  const budget = 1_000_000_000 + 12345;
  const t0 = performance.now();
  const r = chooseHotNeurons(counts, costs, budget);
  const ms = performance.now() - t0;
  checkConsistent(r, counts, costs, budget);
  assert.ok(ms < 20000, `took ${ms} ms`);
  // Plain greedy by ratio, skipping what does not fit, for comparison.
  const items: [number, number][] = [];
  counts.forEach((c, l) => c.forEach((v) => items.push([v, costs[l]])));
  items.sort((a, b) => b[0] / b[1] - a[0] / a[1]);
  let left = budget;
  let greedy = 0;
  for (const [v, c] of items) if (c <= left) { left -= c; greedy += v; }
  assert.ok(r.covered >= greedy, `exact ${r.covered} < greedy ${greedy}`);
});

test('bad inputs are refused with a clear message', () => {
  assert.throws(() => chooseHotNeurons([Float64Array.of(1)], [0], 10), /neuron cost 0/);
  assert.throws(() => chooseHotNeurons([Float64Array.of(1)], [1, 2], 10), /1 layers of counts but 2/);
  assert.throws(() => chooseHotNeurons([Float64Array.of(1)], [1], -1), /budget -1/);
});

test('placements in groups (PowerInfer counts): every layer a multiple of the group or whole, optimal among those', async () => {
  const { chooseInGroups } = await import('../../server/profiler/placement-plan.js');
  const rand = seededRandom(77);
  for (let t = 0; t < 200; t++) {
    const group = 2 + Math.floor(rand() * 3);
    const L = 1 + Math.floor(rand() * 3);
    // n_ff a multiple of the group (as in published models: exact), or not (valid).
    const exact = t % 2 === 0;
    const counts = Array.from({ length: L }, () =>
      Float64Array.from({ length: exact ? group * (1 + Math.floor(rand() * 3)) : 1 + Math.floor(rand() * 9) }, () => Math.floor(rand() * 20)),
    );
    const costs = counts.map(() => 1 + Math.floor(rand() * 4));
    const budget = Math.floor(rand() * 40);
    const got = chooseInGroups(counts, costs, budget, group);
    let bytes = 0;
    let covered = 0;
    got.forEach((ids, l) => {
      assert.ok(ids.length % group === 0 || ids.length === counts[l].length, `layer ${l}: ${ids.length} in groups of ${group}`);
      ids.forEach((i, j) => assert.ok(j === 0 || i > ids[j - 1]));
      bytes += ids.length * costs[l];
      covered += ids.reduce((s, i) => s + counts[l][i], 0);
    });
    assert.ok(bytes <= budget, `${bytes} <= ${budget}`);
    if (!exact) continue;
    // Exhaustive: every allowed count per layer, each layer's hottest neurons.
    const sorted = counts.map((c) => [...c].sort((a, b) => b - a));
    const options = counts.map((c) => {
      const ks = [];
      for (let k = 0; k <= c.length; k += group) ks.push(k);
      if (ks[ks.length - 1] !== c.length) ks.push(c.length);
      return ks;
    });
    let best = 0;
    const walk = (l: number, b: number, cov: number) => {
      if (l === L) {
        best = Math.max(best, cov);
        return;
      }
      for (const k of options[l]) {
        if (b + k * costs[l] > budget) break;
        walk(l + 1, b + k * costs[l], cov + sorted[l].slice(0, k).reduce((s, v) => s + v, 0));
      }
    };
    walk(0, 0, 0);
    assert.equal(covered, best, `case ${t}`);
  }
});
