// The small-batch benchmark binding refuses bad arguments. The timing itself is a
// benchmark, not a test: `relu-serve bench-kernels` (server/cli/bench-kernels.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { GgmlType, K } from './kernel-data.js';

test('benchBatch rejects bad arguments with an error naming them', () => {
  assert.throws(() => K.benchBatch(GgmlType.Q4_0, 'scalar', 10, 32, [], 1), /ncs must have 1 \.\. 64 entries/);
  assert.throws(() => K.benchBatch(GgmlType.Q4_0, 'scalar', 10, 32, [2, 0], 1), /ncs\[1\] must be an integer/);
  assert.throws(() => K.benchBatch(GgmlType.Q4_0, 'scalar', 10, 32, 4 as unknown as number[], 1), /ncs must be an array/);
  assert.throws(() => K.benchBatch(GgmlType.Q4_0, 'scalar', 10, 32, [1], 1), /use rows \* rowSize >= 48 MiB/);
});
