// Optimised matmul kernels (vec_dot and gemm tiles) of every supported weight type on
// every ISA this machine has, against the reference twin on the same converted
// activations. Tolerance: |kernel - ref| <= tol * sum|w_i * x_i| (+1e-6), with tol =
// 1e-5 for the quantised types (integer block sums are exact; only float summation
// order differs) and 3e-5 for f32/f16/bf16 weights (every product is a float add).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { absDotScale, GgmlType, ISAS, K, randomFloats, randomWeights, WEIGHT_TYPES } from './kernel-data.js';

const FLOAT_TYPES: number[] = [GgmlType.F32, GgmlType.F16, GgmlType.BF16];
const tolOf = (type: number) => (FLOAT_TYPES.includes(type) ? 3e-5 : 1e-5);

// (weight rows, activation rows): single, full 4x4 tiles, and every kind of edge tile
const SHAPES: Array<[number, number]> = [
  [1, 1],
  [3, 2],
  [4, 4],
  [5, 3],
  [9, 7],
  [8, 9],
];

function weights(type: number, rows: number, n: number, seed: number): { q: Buffer; deq: Float32Array } {
  const w = randomWeights(rows * n, seed);
  const q = K.quantize(type, w);
  return { q, deq: K.dequantize(type, q, rows * n) };
}

for (const tc of WEIGHT_TYPES) {
  test(`${tc.name}: activation conversion is bit-identical to the reference on every ISA`, () => {
    for (const n of tc.ns) {
      const x = randomFloats(n, n + 1, 3);
      const ref = K.fromFloat(tc.type, 'ref', x);
      for (const isa of ISAS) assert.ok(K.fromFloat(tc.type, isa, x).equals(ref), `${isa} n=${n}`);
    }
  });

  for (const isa of ISAS) {
    test(`${tc.name} x ${isa}: vec_dot and gemm match the reference`, () => {
      const tol = tolOf(tc.type);
      for (const n of tc.ns) {
        for (const [rows, nc] of SHAPES) {
          const { q, deq } = weights(tc.type, rows, n, 100 * rows + nc + n);
          const x = randomFloats(nc * n, 31 * n + rows, 2);
          const ref = K.matmul(tc.type, 'ref', q, rows, n, x, nc, false);
          const viaDot = K.matmul(tc.type, isa, q, rows, n, x, nc, false);
          const viaGemm = K.matmul(tc.type, isa, q, rows, n, x, nc, true);
          for (let c = 0; c < nc; c++)
            for (let r = 0; r < rows; r++) {
              const i = c * rows + r;
              const bound = tol * absDotScale(deq.subarray(r * n, (r + 1) * n), x.subarray(c * n, (c + 1) * n)) + 1e-6;
              const where = `n=${n} rows=${rows} nc=${nc} r=${r} c=${c}`;
              assert.ok(Math.abs(viaDot[i] - ref[i]) <= bound, `vec_dot ${where}: ${viaDot[i]} vs ${ref[i]}`);
              assert.ok(Math.abs(viaGemm[i] - ref[i]) <= bound, `gemm ${where}: ${viaGemm[i]} vs ${ref[i]}`);
            }
        }
      }
    });
  }
}

// gemm walks activation rows in blocks of ~512 KiB (kernels/cpu/rs_cpu_internal.h);
// enough rows to cross a block boundary with a ragged last block.
for (const tc of WEIGHT_TYPES) {
  test(`${tc.name}: gemm over more activation rows than one column block`, () => {
    const n = tc.type === GgmlType.Q4_K || tc.type === GgmlType.Q5_K || tc.type === GgmlType.Q6_K ? 2048 : 4096;
    const vdt = K.typeTraits(tc.type)!.vecDotType;
    const nc = Math.ceil((512 * 1024) / K.rowSize(vdt, n)) + 5;
    const rows = 5;
    const { q, deq } = weights(tc.type, rows, n, 77);
    const x = randomFloats(nc * n, 78, 2);
    const ref = K.matmul(tc.type, 'ref', q, rows, n, x, nc, false);
    for (const isa of ISAS) {
      const got = K.matmul(tc.type, isa, q, rows, n, x, nc, true);
      for (let c = 0; c < nc; c++)
        for (let r = 0; r < rows; r++) {
          const i = c * rows + r;
          const bound = tolOf(tc.type) * absDotScale(deq.subarray(r * n, (r + 1) * n), x.subarray(c * n, (c + 1) * n)) + 1e-6;
          assert.ok(Math.abs(got[i] - ref[i]) <= bound, `${isa} nc=${nc} r=${r} c=${c}: ${got[i]} vs ${ref[i]}`);
        }
    }
  });
}

test('the reference dot agrees with dequantised weights x dequantised activations', () => {
  // Guards the oracle itself: ref vec_dot == sum(deq(w) * deq(a)) in double.
  for (const tc of WEIGHT_TYPES) {
    const n = tc.ns[tc.ns.length - 1];
    const { q, deq } = weights(tc.type, 1, n, 5);
    const x = randomFloats(n, 6, 2);
    const a = K.fromFloat(tc.type, 'ref', x);
    const vdt = K.typeTraits(tc.type)!.vecDotType;
    const adeq = vdt === GgmlType.F32 ? x : decodeActivation(vdt, a, n);
    let s = 0;
    for (let i = 0; i < n; i++) s += deq[i] * adeq[i];
    const got = K.vecDot(tc.type, 'ref', q, x, n);
    assert.ok(Math.abs(got - s) <= 1e-5 * absDotScale(deq, x) + 1e-6, `${tc.name}: ${got} vs ${s}`);
  }
});

// Q8_0 (and the Q8_0 prefix of Q8_0X): f16 d + 32 int8; Q8_K: f32 d + 256 int8 + 16 int16.
function decodeActivation(vdt: number, a: Buffer, n: number): Float32Array {
  const out = new Float32Array(n);
  if (vdt === GgmlType.Q8_K) {
    for (let b = 0; b < n / 256; b++) {
      const d = a.readFloatLE(292 * b);
      for (let i = 0; i < 256; i++) out[256 * b + i] = d * a.readInt8(292 * b + 4 + i);
    }
    return out;
  }
  const d16 = K.dequantize(GgmlType.F16, Buffer.concat(Array.from({ length: n / 32 }, (_, b) => a.subarray(34 * b, 34 * b + 2))), n / 32);
  for (let b = 0; b < n / 32; b++) for (let i = 0; i < 32; i++) out[32 * b + i] = d16[b] * a.readInt8(34 * b + 2 + i);
  return out;
}
