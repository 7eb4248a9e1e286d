// Block layouts, proved with hand-built blocks whose values are worked out from ggml's
// definitions (ggml-common.h / ggml-quants.c dequantize_row_*), and quantise ->
// dequantise round trips with their error bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { GgmlType, K, randomWeights, WEIGHT_TYPES } from './kernel-data.js';

const F16_ONE = 0x3c00;
const F16_HALF = 0x3800;
const F16_QUARTER = 0x3400;

function u16(buf: Buffer, off: number, v: number): void {
  buf.writeUInt16LE(v, off);
}

test('f16 and bf16 decode known bit patterns', () => {
  const bits = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x8000, 0x3555, 0x7c00, 0xfc00];
  const want = [1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, -0, 0.333251953125, Infinity, -Infinity];
  const b = Buffer.alloc(bits.length * 2);
  bits.forEach((v, i) => u16(b, 2 * i, v));
  assert.deepEqual(Array.from(K.dequantize(GgmlType.F16, b, bits.length)), want);

  const bf = Buffer.alloc(6);
  u16(bf, 0, 0x3f80);
  u16(bf, 2, 0xc0a0);
  u16(bf, 4, 0x4049); // 3.140625
  assert.deepEqual(Array.from(K.dequantize(GgmlType.BF16, bf, 3)), [1, -5, 3.140625]);
});

test('Q4_0: low nibbles are elements 0..15, high nibbles 16..31, value (q - 8) * d', () => {
  const b = Buffer.alloc(18);
  u16(b, 0, F16_HALF);
  for (let j = 0; j < 16; j++) b[2 + j] = j | ((15 - j) << 4);
  const y = K.dequantize(GgmlType.Q4_0, b, 32);
  for (let j = 0; j < 16; j++) {
    assert.equal(y[j], (j - 8) * 0.5, `element ${j}`);
    assert.equal(y[j + 16], (15 - j - 8) * 0.5, `element ${j + 16}`);
  }
});

test('Q8_0: value qs[i] * d', () => {
  const b = Buffer.alloc(34);
  u16(b, 0, F16_QUARTER);
  for (let i = 0; i < 32; i++) b.writeInt8(i * 8 - 128, 2 + i);
  const y = K.dequantize(GgmlType.Q8_0, b, 32);
  for (let i = 0; i < 32; i++) assert.equal(y[i], (i * 8 - 128) * 0.25);
});

// 12 packed scale bytes and the (scale, min) pairs get_scale_min_k4 yields for them,
// worked by hand: j < 4 take the low 6 bits of bytes j and j + 4; j >= 4 take the
// nibbles of byte j + 4 and the top 2 bits of bytes j - 4 (scale) and j (min).
const K4_SCALES = [0x41, 0x82, 0x03, 0xc4, 0x05, 0x46, 0x87, 0x08, 0x21, 0x43, 0x65, 0x87];
const K4_SC = [1, 2, 3, 4, 17, 35, 5, 55];
const K4_MIN = [5, 6, 7, 8, 2, 20, 38, 8];

// ggml's loop: for each 64-element chunk c, low nibbles of qs[32c + l] are sub-block
// 2c, high nibbles sub-block 2c + 1; y = d * sc * q - dmin * m.
test('Q4_K: super-block scales, 6-bit packed sub-block scales/mins, nibble order', () => {
  const b = Buffer.alloc(144);
  u16(b, 0, F16_ONE); // d
  u16(b, 2, F16_HALF); // dmin
  K4_SCALES.forEach((v, i) => (b[4 + i] = v));
  for (let c = 0; c < 4; c++) for (let l = 0; l < 32; l++) b[16 + 32 * c + l] = (l & 15) | (((l + c) & 15) << 4);
  const y = K.dequantize(GgmlType.Q4_K, b, 256);
  for (let c = 0; c < 4; c++)
    for (let l = 0; l < 32; l++) {
      const lo = 2 * c, hi = 2 * c + 1;
      assert.equal(y[64 * c + l], K4_SC[lo] * (l & 15) - 0.5 * K4_MIN[lo], `sub-block ${lo} element ${l}`);
      assert.equal(y[64 * c + 32 + l], K4_SC[hi] * ((l + c) & 15) - 0.5 * K4_MIN[hi], `sub-block ${hi} element ${l}`);
    }
});

// Q5_K: as Q4_K, plus bit (2c) / (2c + 1) of qh[l] as the fifth bit of element l of
// sub-block 2c / 2c + 1.
test('Q5_K: fifth bits from qh', () => {
  const b = Buffer.alloc(176);
  u16(b, 0, F16_HALF);
  u16(b, 2, F16_ONE);
  K4_SCALES.forEach((v, i) => (b[4 + i] = v));
  const qh = (l: number) => (l * 37 + 11) & 0xff;
  for (let l = 0; l < 32; l++) b[16 + l] = qh(l);
  for (let c = 0; c < 4; c++) for (let l = 0; l < 32; l++) b[48 + 32 * c + l] = ((l + 3) & 15) | ((l * 5) & 15) << 4;
  const y = K.dequantize(GgmlType.Q5_K, b, 256);
  for (let c = 0; c < 4; c++)
    for (let l = 0; l < 32; l++) {
      const lo = 2 * c, hi = 2 * c + 1;
      const q0 = ((l + 3) & 15) + ((qh(l) >> lo) & 1) * 16;
      const q1 = ((l * 5) & 15) + ((qh(l) >> hi) & 1) * 16;
      assert.equal(y[64 * c + l], 0.5 * K4_SC[lo] * q0 - K4_MIN[lo], `sub-block ${lo} element ${l}`);
      assert.equal(y[64 * c + 32 + l], 0.5 * K4_SC[hi] * q1 - K4_MIN[hi], `sub-block ${hi} element ${l}`);
    }
});

// Q6_K, transcribing ggml's loop: per 128-element half n, for l < 32:
//   y[l]      = d * sc[is]     * ((ql[l]      & 15 | (qh[l] >> 0 & 3) << 4) - 32)
//   y[l + 32] = d * sc[is + 2] * ((ql[l + 32] & 15 | (qh[l] >> 2 & 3) << 4) - 32)
//   y[l + 64] = d * sc[is + 4] * ((ql[l]      >> 4 | (qh[l] >> 4 & 3) << 4) - 32)
//   y[l + 96] = d * sc[is + 6] * ((ql[l + 32] >> 4 | (qh[l] >> 6 & 3) << 4) - 32)
// with is = l / 16, then ql += 64, qh += 32, sc += 8.
test('Q6_K: ql/qh bit planes, int8 scales, trailing f16 d', () => {
  const b = Buffer.alloc(210);
  const ql = (i: number) => (i * 29 + 7) & 0xff;
  const qh = (i: number) => (i * 53 + 1) & 0xff;
  for (let i = 0; i < 128; i++) b[i] = ql(i);
  for (let i = 0; i < 64; i++) b[128 + i] = qh(i);
  for (let s = 0; s < 16; s++) b.writeInt8(s * 9 - 70, 192 + s); // -70 .. 65
  u16(b, 208, F16_HALF);
  const sc = (s: number) => s * 9 - 70;
  const y = K.dequantize(GgmlType.Q6_K, b, 256);
  for (let n = 0; n < 2; n++)
    for (let l = 0; l < 32; l++) {
      const is = 8 * n + Math.floor(l / 16);
      const L = (i: number) => ql(64 * n + i);
      const H = qh(32 * n + l);
      const base = 128 * n;
      assert.equal(y[base + l], 0.5 * sc(is) * (((L(l) & 15) | (((H >> 0) & 3) << 4)) - 32));
      assert.equal(y[base + l + 32], 0.5 * sc(is + 2) * (((L(l + 32) & 15) | (((H >> 2) & 3) << 4)) - 32));
      assert.equal(y[base + l + 64], 0.5 * sc(is + 4) * (((L(l) >> 4) | (((H >> 4) & 3) << 4)) - 32));
      assert.equal(y[base + l + 96], 0.5 * sc(is + 6) * (((L(l + 32) >> 4) | (((H >> 6) & 3) << 4)) - 32));
    }
});

// Relative RMS error of quantise -> dequantise on randomWeights (which has 6x outliers
// every 97 elements). Worst over 40 seeds, measured: f16 2.3e-4, bf16 1.9e-3, q4_0
// 0.129, q8_0 0.0078, q4_K 0.072, q5_K 0.036, q6_K 0.024. The bounds leave ~25%
// headroom, so a broken fit or packing fails them.
const RMS_BOUND: Record<string, number> = {
  f32: 0,
  f16: 3e-4,
  bf16: 2.5e-3,
  q4_0: 0.16,
  q8_0: 0.01,
  q4_K: 0.09,
  q5_K: 0.045,
  q6_K: 0.03,
};

for (const tc of WEIGHT_TYPES) {
  test(`${tc.name}: quantise -> dequantise round trip`, () => {
    const n = tc.type === GgmlType.F32 || tc.type === GgmlType.F16 || tc.type === GgmlType.BF16 ? 4096 : 8192;
    const x = randomWeights(n, 7 + tc.type);
    const q = K.quantize(tc.type, x);
    assert.equal(q.length, K.rowSize(tc.type, n));
    const y = K.dequantize(tc.type, q, n);
    let e2 = 0, s2 = 0;
    for (let i = 0; i < n; i++) {
      e2 += (y[i] - x[i]) ** 2;
      s2 += x[i] ** 2;
    }
    const rel = Math.sqrt(e2 / s2);
    assert.ok(rel <= RMS_BOUND[tc.name], `${tc.name} relative RMS error ${rel} > ${RMS_BOUND[tc.name]}`);
    // zeros stay zeros (no NaN from a zero scale)
    const z = K.dequantize(tc.type, K.quantize(tc.type, new Float32Array(n)), n);
    assert.ok(z.every((v) => v === 0), 'all-zero input decodes to zeros');
  });
}

// ggml's Q4_0 fit maps the largest-magnitude value to level -8 (d = vmax / -8), so
// values within 7.5 steps round to the nearest level (error <= d/2) and only values
// on the other side beyond +7.5 steps clamp to level 7 (error <= d).
test('Q4_0 per-element error: half a step, one step where clamped', () => {
  const x = randomWeights(4096, 3);
  const y = K.dequantize(GgmlType.Q4_0, K.quantize(GgmlType.Q4_0, x), 4096);
  let clamped = 0;
  for (let b = 0; b < 128; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[32 * b + i]));
    const step = amax / 8;
    for (let i = 0; i < 32; i++) {
      const v = x[32 * b + i], err = Math.abs(y[32 * b + i] - v);
      const edge = Math.abs(v) / step > 7.5;
      if (edge) clamped++;
      assert.ok(err <= step * (edge ? 1.001 : 0.5005) + 1e-7, `block ${b} element ${i}: ${v} -> ${y[32 * b + i]}`);
    }
  }
  assert.ok(clamped > 0, 'the data reaches the clamped edge');
});
