// Batch independence: within one ISA, gemm's result for (weight row r, activation row c)
// is bit for bit vec_dot(w_r, a_c), for any nr / nc and wherever r and c fall in tiles,
// edge tiles and column blocks. The server decodes several users' sequences in one
// batch, so a request's logits must not depend on how many others share its step.
// Exact equality, not a tolerance: one flipped bit can flip a sampled token.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { GgmlType, ISAS, K, randomFloats, randomWeights, type TypeCase } from './kernel-data.js';

// Row lengths with partial groups: for floats, tails of every kind of the 8/16/32-element
// steps (n % 32 in (0, 16] and (16, 32), n % 16 >= 8, n % 8 != 0); for Q4_0 / Q8_0,
// blocks after the last whole group of 4; K-quants, 1 and several super-blocks.
const CASES: TypeCase[] = [
  { name: 'f32', type: GgmlType.F32, ns: [1, 7, 24, 45, 61, 1000] },
  { name: 'f16', type: GgmlType.F16, ns: [1, 7, 24, 45, 61, 1000] },
  { name: 'bf16', type: GgmlType.BF16, ns: [1, 7, 24, 45, 61, 1000] },
  { name: 'q4_0', type: GgmlType.Q4_0, ns: [32, 96, 160, 544, 4096] },
  { name: 'q8_0', type: GgmlType.Q8_0, ns: [32, 96, 160, 544, 4096] },
  { name: 'q4_K', type: GgmlType.Q4_K, ns: [256, 768, 2560] },
  { name: 'q5_K', type: GgmlType.Q5_K, ns: [256, 768, 2560] },
  { name: 'q6_K', type: GgmlType.Q6_K, ns: [256, 768, 2560] },
];

// (weight rows, activation rows): one output; several rows against one activation row
// (decode: rows side by side, a ragged last run); single rows against small batches
// (1 x nc tiles); full tiles (4 x 4, 4 x 2, 2 x 4, 2 x 2); every kind of
// edge tile; a 32-row engine chunk against 5 rows.
const SHAPES: Array<[number, number]> = [
  [1, 1], [2, 1], [3, 1], [4, 1], [7, 1], [9, 1], [1, 2], [1, 3], [1, 5], [2, 2], [3, 2], [4, 4], [5, 3], [8, 8], [9, 7], [7, 9], [6, 16], [5, 17], [32, 5],
];

function firstDiff(a: Float32Array, b: Float32Array): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

function assertSameBits(got: Float32Array, want: Float32Array, rows: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const i = firstDiff(got, want);
  if (i >= 0) {
    const r = i % rows, c = Math.floor(i / rows);
    assert.fail(`${what}: r=${r} c=${c}: gemm ${got[i]} vs vec_dot ${want[i]}`);
  }
}

function inputs(type: number, rows: number, n: number, nc: number, seed: number): { q: Buffer; x: Float32Array } {
  return { q: K.quantize(type, randomWeights(rows * n, seed)), x: randomFloats(nc * n, seed + 1, 2) };
}

for (const tc of CASES) {
  for (const isa of ISAS) {
    test(`${tc.name} x ${isa}: gemm output == vec_dot bit for bit, every shape`, () => {
      for (const n of tc.ns) {
        for (const [rows, nc] of SHAPES) {
          const { q, x } = inputs(tc.type, rows, n, nc, 1000 * rows + 10 * nc + n);
          const viaDot = K.matmul(tc.type, isa, q, rows, n, x, nc, false);
          const viaGemm = K.matmul(tc.type, isa, q, rows, n, x, nc, true);
          assertSameBits(viaGemm, viaDot, rows, `n=${n} rows=${rows} nc=${nc}`);
        }
      }
    });
  }
}

// A row's result must not change with the rows around it: the same (weight row,
// activation row) pair computed alone (vec_dot, the engine's batch of one), in a
// batch, and at other positions of another batch, gives one value.
for (const tc of CASES) {
  test(`${tc.name}: a row's result does not depend on the batch it is in`, () => {
    const n = tc.ns[tc.ns.length - 1];
    const rows = 6, nc = 11;
    const { q, x } = inputs(tc.type, rows, n, nc, 4242);
    const rowBytes = K.rowSize(tc.type, n);
    for (const isa of ISAS) {
      const whole = K.matmul(tc.type, isa, q, rows, n, x, nc, true);
      for (const [r, c] of [[0, 0], [3, 5], [5, 10]]) {
        // alone: what the engine computes for a batch of one (vec_dot)
        const alone = K.matmul(tc.type, isa, q.subarray(r * rowBytes, (r + 1) * rowBytes), 1, n, x.subarray(c * n, (c + 1) * n), 1, false);
        assertSameBits(alone, whole.subarray(c * rows + r, c * rows + r + 1), 1, `${isa} (${r}, ${c}) alone vs in 6 x 11`);
        // the same activation row shifted to other batch positions, among other rows
        for (const at of [1, 4, 7]) {
          const xs = new Float32Array(x.subarray(0, 8 * n));
          xs.set(x.subarray(c * n, (c + 1) * n), at * n);
          const batch = K.matmul(tc.type, isa, q, rows, n, xs, 8, true);
          assertSameBits(batch.subarray(at * rows + r, at * rows + r + 1), alone, 1, `${isa} (${r}, ${c}) at batch row ${at}`);
        }
      }
    }
  });
}

// The engine's call pattern (addon/src/backend_cpu.cpp): 32-row weight chunks x 64-row
// activation blocks, each a separate gemm call at an offset; ragged last chunk and
// block. Each piece must equal vec_dot over the whole matrix.
for (const tc of CASES) {
  test(`${tc.name}: engine-shaped gemm pieces (32-row chunks x 64-row blocks) == vec_dot`, () => {
    const n = tc.ns[tc.ns.length - 1];
    const rows = 70, nc = 67;
    const { q, x } = inputs(tc.type, rows, n, nc, 777);
    const rowBytes = K.rowSize(tc.type, n);
    for (const isa of ISAS) {
      const want = K.matmul(tc.type, isa, q, rows, n, x, nc, false);
      for (let r0 = 0; r0 < rows; r0 += 32) {
        const r1 = Math.min(rows, r0 + 32);
        for (let c0 = 0; c0 < nc; c0 += 64) {
          const c1 = Math.min(nc, c0 + 64);
          const got = K.matmul(tc.type, isa, q.subarray(r0 * rowBytes, r1 * rowBytes), r1 - r0, n, x.subarray(c0 * n, c1 * n), c1 - c0, true);
          for (let c = c0; c < c1; c++)
            assertSameBits(got.subarray((c - c0) * (r1 - r0), (c - c0 + 1) * (r1 - r0)), want.subarray(c * rows + r0, c * rows + r1),
              r1 - r0, `${isa} n=${n} chunk ${r0} block ${c0} c=${c}`);
        }
      }
    }
  });
}

// gemm walks activation rows in column blocks of ~512 KiB (rs_gemm_col_block in
// kernels/cpu/rs_cpu_internal.h): cross a block boundary, with a ragged last block.
for (const tc of CASES) {
  test(`${tc.name}: gemm == vec_dot across gemm's own column-block boundary`, () => {
    const n = tc.type === GgmlType.Q4_K || tc.type === GgmlType.Q5_K || tc.type === GgmlType.Q6_K ? 2048 : 4096;
    const vdt = K.typeTraits(tc.type)!.vecDotType;
    const nc = Math.ceil((512 * 1024) / K.rowSize(vdt, n)) + 5;
    const rows = 5;
    const { q, x } = inputs(tc.type, rows, n, nc, 99);
    for (const isa of ISAS)
      assertSameBits(K.matmul(tc.type, isa, q, rows, n, x, nc, true), K.matmul(tc.type, isa, q, rows, n, x, nc, false), rows,
        `${isa} n=${n} nc=${nc}`);
  });
}
