// bench's time/token line: each part's time and the rate it read its own bytes at. The
// neuron choice reads the predictor (predictor mode) or the whole gate (exact mode, where
// the gate rows are part of the FFN's bytes and must not be counted twice).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTimeSplit, type ModeResult } from '../../server/cli/bench.js';

const MB = 1e6;

function mode(m: ModeResult['mode'], selectBytes: number, split: ModeResult['bytesSplit'], t: ModeResult['timeSplit']): ModeResult {
  return {
    label: m, mode: m, promptTokensPerS: 0, promptGflops: 0, genTokensPerS: 0, activeRatio: 0, bytesPerToken: 0,
    bytesSplit: split, timeSplit: t, selectBytes, bandwidthGBs: 0, bandwidthLimitTokensPerS: 0, genFractionOfLimit: 0,
  };
}

test('predictor mode: the predictor bytes are the choice\'s, the FFN\'s are its own', () => {
  const r = mode('predictor', 40 * MB, { attention: 90 * MB, predictor: 40 * MB, ffn: 60 * MB, output: 50 * MB, kvCache: 10 * MB }, { attention: 2, select: 1, ffn: 3, output: 1, other: 0.25 });
  assert.equal(formatTimeSplit(r), 'attention 2.00 ms (50.0 GB/s), predictor 1.00 ms (40.0 GB/s), FFN 3.00 ms (20.0 GB/s), output 1.00 ms (50.0 GB/s), other 0.25 ms');
});

test('exact mode: the gate is the choice, and the FFN rate counts only the rows after it', () => {
  const r = mode('exact', 100 * MB, { attention: 90 * MB, predictor: 0, ffn: 160 * MB, output: 50 * MB, kvCache: 10 * MB }, { attention: 2, select: 4, ffn: 2, output: 1, other: 0 });
  assert.equal(formatTimeSplit(r), 'attention 2.00 ms (50.0 GB/s), gate 4.00 ms (25.0 GB/s), FFN 2.00 ms (30.0 GB/s), output 1.00 ms (50.0 GB/s), other 0.00 ms');
});

test('dense mode: no choice, and no rate for a part that took no time', () => {
  const r = mode('dense', 0, { attention: 90 * MB, predictor: 0, ffn: 400 * MB, output: 50 * MB, kvCache: 0 }, { attention: 3, select: 0, ffn: 10, output: 0, other: 0.5 });
  assert.equal(formatTimeSplit(r), 'attention 3.00 ms (30.0 GB/s), predictor 0.00 ms, FFN 10.00 ms (40.0 GB/s), output 0.00 ms, other 0.50 ms');
});
