// Decode-batch cost of the matmul kernels: gemm against nc = 1..64 activation rows in
// the engine's call shape, next to vec_dot against one, on a matrix past the L3.
// Timing runs only with RS_BENCH=1 (it takes seconds and a quiet machine to mean
// anything): RS_BENCH=1 node --test dist/test/kernels/bench-batch.test.js
// The argument checks always run.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { GgmlType, K } from './kernel-data.js';

test('benchBatch rejects bad arguments with an error naming them', () => {
  assert.throws(() => K.benchBatch(GgmlType.Q4_0, 'scalar', 10, 32, [], 1), /ncs must have 1 \.\. 64 entries/);
  assert.throws(() => K.benchBatch(GgmlType.Q4_0, 'scalar', 10, 32, [2, 0], 1), /ncs\[1\] must be an integer/);
  assert.throws(() => K.benchBatch(GgmlType.Q4_0, 'scalar', 10, 32, 4 as unknown as number[], 1), /ncs must be an array/);
  assert.throws(() => K.benchBatch(GgmlType.Q4_0, 'scalar', 10, 32, [1], 1), /use rows \* rowSize >= 48 MiB/);
});

const NCS = [1, 2, 3, 4, 8, 16, 64];
const TYPES: Array<[string, number]> = [
  ['q4_0', GgmlType.Q4_0],
  ['q8_0', GgmlType.Q8_0],
  ['f16', GgmlType.F16],
  ['q4_K', GgmlType.Q4_K],
  ['q6_K', GgmlType.Q6_K],
];

test('small-batch gemm cost against vec_dot (RS_BENCH=1)', { skip: process.env.RS_BENCH ? false : 'set RS_BENCH=1' }, () => {
  const isa = (process.env.RS_BENCH_ISA as 'scalar' | 'avx2' | 'avx512' | undefined) ?? K.bestIsa();
  const n = 4096;
  const lines = [`isa ${isa}, n = ${n}, one thread; gemm time / vec_dot time`, `type  MiB  vec_dot ms  GB/s | ${NCS.map((c) => `nc=${c}`.padStart(7)).join('')}`];
  for (const [name, type] of TYPES) {
    const rows = Math.ceil((64 << 20) / K.rowSize(type, n));
    const r = K.benchBatch(type, isa, rows, n, NCS, 8);
    assert.equal(r.gemmSeconds.length, NCS.length);
    assert.ok(r.vecDotSeconds > 0 && r.gemmSeconds.every((s) => s > 0));
    lines.push(
      `${name.padEnd(5)} ${(r.bytes / 2 ** 20).toFixed(0).padStart(3)}  ${(r.vecDotSeconds * 1e3).toFixed(2).padStart(10)}  ${(r.bytes / r.vecDotSeconds / 1e9).toFixed(1).padStart(4)} | ` +
        r.gemmSeconds.map((s) => `${(s / r.vecDotSeconds).toFixed(2)}x`.padStart(7)).join(''),
    );
  }
  console.log(lines.join('\n'));
});
