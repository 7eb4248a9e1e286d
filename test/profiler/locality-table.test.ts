// The locality numbers and the table `profile` prints, on inputs small enough to work out
// by hand (the expected rows below were computed by hand, see the comments).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coverageAt, formatLocalityTable, layerLocality, neuronsForShare } from '../../server/profiler/locality.js';
import type { ActivationStats } from '../../server/profiler/stats-format.js';

const identity = { name: 'm', arch: 'llama', hash: new Uint8Array(32) };
const st = (counts: Float64Array[], tokens: number, predictor?: ActivationStats['predictor']): ActivationStats => ({ identity, tokens, source: 'p', counts, predictor });

test('locality sorts the counts itself (hottest first) and treats an all-zero layer as covering nothing', () => {
  const l = layerLocality(Float64Array.of(30, 0, 60, 10)); // hottest first: 60 30 10 0
  assert.deepEqual([...l.prefix], [0, 60, 90, 100, 100]);
  assert.deepEqual([l.nFf, l.total, l.dead], [4, 100, 1]);
  assert.equal(coverageAt(l, 0.1), 0.24); // 0.4 of the 60-neuron
  assert.equal(neuronsForShare(l, 0.8), 0.5);
  const zero = layerLocality(new Float64Array(3));
  assert.deepEqual([zero.total, zero.dead], [0, 3]);
  assert.equal(coverageAt(zero, 0.5), 0);
  assert.equal(neuronsForShare(zero, 0.8), 0);
  const none = layerLocality(new Float64Array(0));
  assert.equal(coverageAt(none, 0.5), 0);
  assert.equal(neuronsForShare(none, 0.5), 0);
});

test('the table: fire rate, dead share, coverage columns, predictor recall and precision, the mean line', () => {
  // Layer 0: 100 activations over 40 tokens x 4 neurons = 62.5%; 1 of 4 dead; the top 10%
  // (0.4 neuron) covers 24 of 100, the top 20% 48; 2 of 4 neurons reach 80%; recall 3/3,
  // precision 3/4. Layer 1 never fires: 0% everywhere, no predictor events (shown as -).
  const t = formatLocalityTable(
    st([Float64Array.of(30, 0, 60, 10), Float64Array.of(0, 0, 0, 0)], 40, [
      { truePositive: 3, falsePositive: 1, falseNegative: 0 },
      { truePositive: 0, falsePositive: 0, falseNegative: 0 },
    ]),
  ).split('\n');
  assert.deepEqual(t, [
    'layer   n_ff  fire rate   dead  top10% covers  top20% covers  neurons for 80%  pred. recall  precision',
    '    0      4     62.50%  25.0%          24.0%          48.0%            50.0%        100.0%      75.0%',
    '    1      4      0.00% 100.0%           0.0%           0.0%             0.0%             -          -',
    'mean: the hottest 10% of neurons cover 12.0% of activations; 80% of activations come from 25.0% of neurons (40 tokens)',
  ]);
  // Recall with no false negatives but some false positives, and the reverse.
  const p = formatLocalityTable(st([Float64Array.of(1)], 1, [{ truePositive: 1, falsePositive: 3, falseNegative: 1 }])).split('\n')[1];
  assert.match(p, / 50\.0% +25\.0%$/);
  assert.match(formatLocalityTable(st([Float64Array.of(1)], 1, [{ truePositive: 2, falsePositive: 2, falseNegative: 2 }])).split('\n')[1], / 50\.0% +50\.0%$/);
  // No token count: fire rate unknown. Counts 5 and 1: top 10% = 0.2 neuron = 1 of 6.
  assert.deepEqual(formatLocalityTable(st([Float64Array.of(5, 1)], 0)).split('\n'), [
    'layer   n_ff  fire rate   dead  top10% covers  top20% covers  neurons for 80%',
    '    0      2          -   0.0%          16.7%          33.3%            50.0%',
    'mean: the hottest 10% of neurons cover 16.7% of activations; 80% of activations come from 50.0% of neurons (token count unknown)',
  ]);
  // A layer without neurons, and no layers at all.
  assert.equal(formatLocalityTable(st([new Float64Array(0)], 10)).split('\n')[1], '    0      0          -   0.0%           0.0%           0.0%             0.0%');
  assert.equal(formatLocalityTable(st([], 10)).split('\n')[1], 'mean: the hottest 10% of neurons cover 0.0% of activations; 80% of activations come from 0.0% of neurons (10 tokens)');
});
