// Property tests for hot-neuron placement: for any counts, layer costs and budget, the
// choice fits the budget, its reported bytes and coverage are what the chosen ids add
// up to, ids are valid and unique, and the coverage is the best a brute force finds on
// instances small enough to enumerate.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import '../fc-seed.js';
import { chooseHotNeurons } from '../../server/profiler/placement.js';

const instanceArb = fc.record({
  layers: fc.array(fc.record({ cost: fc.integer({ min: 1, max: 12 }), counts: fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 8 }) }), { minLength: 1, maxLength: 4 }),
  budgetShare: fc.double({ min: 0, max: 1.2, noNaN: true }),
});

function solve(layers: { cost: number; counts: number[] }[], budgetShare: number) {
  const counts = layers.map((l) => Float64Array.from(l.counts));
  const costs = layers.map((l) => l.cost);
  const all = layers.reduce((a, l) => a + l.cost * l.counts.length, 0);
  const budget = Math.floor(all * budgetShare);
  return { counts, costs, budget, r: chooseHotNeurons(counts, costs, budget) };
}

test('the choice never exceeds its budget and reports what it chose', () => {
  fc.assert(
    fc.property(instanceArb, ({ layers, budgetShare }) => {
      const { counts, costs, budget, r } = solve(layers, budgetShare);
      let bytes = 0;
      let covered = 0;
      r.gpuNeurons.forEach((ids, l) => {
        assert.equal(new Set(ids).size, ids.length, 'ids unique');
        for (const id of ids) {
          assert.ok(id < counts[l].length, 'id in range');
          bytes += costs[l];
          covered += counts[l][id];
        }
      });
      assert.ok(bytes <= budget, `${bytes} bytes over a budget of ${budget}`);
      assert.equal(r.bytes, bytes);
      assert.equal(r.covered, covered);
      assert.equal(r.total, counts.reduce((a, c) => a + c.reduce((x, y) => x + y, 0), 0));
    }),
    { numRuns: 500 },
  );
});

test('coverage is the optimum found by trying every subset (small instances)', () => {
  const small = fc.record({
    layers: fc.array(fc.record({ cost: fc.integer({ min: 1, max: 7 }), counts: fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 4 }) }), { minLength: 1, maxLength: 3 }),
    budgetShare: fc.double({ min: 0, max: 1, noNaN: true }),
  });
  fc.assert(
    fc.property(small, ({ layers, budgetShare }) => {
      const { budget, r } = solve(layers, budgetShare);
      const items = layers.flatMap((l) => l.counts.map((c) => ({ c, cost: l.cost })));
      let best = 0;
      for (let mask = 0; mask < 1 << items.length; mask++) {
        let cost = 0;
        let cov = 0;
        items.forEach((it, i) => {
          if (mask & (1 << i)) (cost += it.cost), (cov += it.c);
        });
        if (cost <= budget && cov > best) best = cov;
      }
      assert.equal(r.covered, best);
    }),
    { numRuns: 300 },
  );
});
