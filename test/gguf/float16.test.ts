import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fp32ToFp16,
  fp16ToFp32,
  fp32ToBf16,
  bf16ToFp32,
  encodeF16,
  encodeBf16,
} from '../../server/gguf/float16.js';

test('f16 encodes known values exactly', () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff], // largest finite half
    [65520, 0x7c00], // rounds up to infinity
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and 2^-24: to even (0)
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal units: to even (2)
    [2 ** -14, 0x0400], // smallest normal
    [1 + 2 ** -11, 0x3c00], // tie: to even (mantissa 0)
    [1 + 3 * 2 ** -11, 0x3c02], // tie: to even (mantissa 2)
    [0.1, 0x2e66],
  ];
  for (const [v, bits] of cases) assert.equal(fp32ToFp16(v), bits, `f16(${v})`);
  assert.equal(fp32ToFp16(NaN) & 0x7c00, 0x7c00);
  assert.notEqual(fp32ToFp16(NaN) & 0x3ff, 0);
});

test('f16 round trip of every half value', () => {
  for (let h = 0; h < 0x10000; h++) {
    const v = fp16ToFp32(h);
    if (Number.isNaN(v)) continue;
    assert.equal(fp32ToFp16(v), h, `half 0x${h.toString(16)}`);
  }
});

test('bf16 rounds to nearest even and keeps NaN a NaN', () => {
  assert.equal(fp32ToBf16(1), 0x3f80);
  assert.equal(fp32ToBf16(-2), 0xc000);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1).
  assert.equal(fp32ToBf16(1 + 2 ** -8), 0x3f80);
  assert.equal(fp32ToBf16(1 + 3 * 2 ** -8), 0x3f82);
  assert.ok(Number.isNaN(bf16ToFp32(fp32ToBf16(NaN))));
  assert.equal(bf16ToFp32(fp32ToBf16(3.140625)), 3.140625);
});

test('bulk encoders agree with the scalar ones', () => {
  const src = new Float32Array([0.5, -1.25, 1e-6, 70000, 3.3]);
  const h = new Uint16Array(encodeF16(src).buffer.slice(0));
  const b = new Uint16Array(encodeBf16(src).buffer.slice(0));
  for (let i = 0; i < src.length; i++) {
    assert.equal(h[i], fp32ToFp16(src[i]));
    assert.equal(b[i], fp32ToBf16(src[i]));
  }
});
