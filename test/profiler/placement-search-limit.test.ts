// Where the exact placement search refuses: just under its size limit it solves (and
// finds an optimum greedy misses), just over it refuses with a clear message. A file of
// its own because it is the slowest placement test: under mutation testing it runs last.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseHotNeurons } from '../../server/profiler/placement.js';

// The exact search's size for two costs c0 < c1 (coprime) is (2T+1) states times the
// choices per layer, T = c1*(c1+1); it refuses above 3e9 steps. Costs 2 and 1162 give
// 676285 states; 4435 choices are 676025 steps under the limit, 4436 are 260 over.
// The cheap layer is taken whole (ratio 100 > 50), so its choices are its n0 + 1
// removals; the dear one is taken 600 deep with 600 left, its window (581 each way)
// limited by T, not by its length.
function nearLimit(n0: number) {
  const counts = [new Float64Array(n0).fill(200), new Float64Array(1200).fill(1162 * 50)];
  const costs = [2, 1162];
  const budget = 2 * n0 + 1162 * 600 + 1000;
  return { counts, costs, budget };
}

test('the exact search runs just under its size limit and refuses just over it', () => {
  const under = nearLimit(3271);
  const r = chooseHotNeurons(under.counts, under.costs, under.budget);
  // Greedy leaves 1000 bytes; dropping 81 cheap neurons (16200) makes room for one more
  // dear one (58100): the optimum, which only the exact search finds.
  assert.deepEqual(r.gpuNeurons.map((x) => x.length), [3271 - 81, 601]);
  assert.equal(r.covered, (3271 - 81) * 200 + 601 * 1162 * 50);
  const over = nearLimit(3272);
  assert.throws(() => chooseHotNeurons(over.counts, over.costs, over.budget), /costs \(2, 1162 bytes per neuron\) are too irregular.*3\.00e\+9 steps\); please report/);
});
