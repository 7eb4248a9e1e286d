// Float kernels (rmsnorm, rope, softmax, FFN activations, attention, f16 helpers) on
// every ISA against the reference twins and against values worked out here.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { f16ToNumber, ISAS, K, randomFloats } from './kernel-data.js';

function assertClose(got: Float32Array | number[], want: Float32Array | number[], rel: number, abs: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    assert.ok(d <= abs + rel * Math.abs(want[i]), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

const SIZES = [1, 5, 8, 31, 64, 4099];

test('rmsnorm matches the reference and the formula', () => {
  const x = Float32Array.from([1, 2, 3, 4]);
  const w = Float32Array.from([1, 1, 2, 0.5]);
  const rms = Math.sqrt((1 + 4 + 9 + 16) / 4 + 1e-6);
  assertClose(K.rmsnorm('ref', x, w, 1e-6), [1 / rms, 2 / rms, 6 / rms, 2 / rms], 1e-6, 0, 'ref');
  for (const isa of ISAS)
    for (const n of SIZES) {
      const a = randomFloats(n, n, 4), g = randomFloats(n, n + 1);
      assertClose(K.rmsnorm(isa, a, g, 1e-5), K.rmsnorm('ref', a, g, 1e-5), 2e-6, 1e-7, `${isa} n=${n}`);
    }
});

test('rope rotates interleaved pairs by pos * base^(-2i/d)', () => {
  // pair 0 has frequency 1: (1, 0) at pos p becomes (cos p, sin p); pos 0 is identity
  const x = Float32Array.from([1, 0, 0, 1]);
  const p = 3;
  const want = [Math.cos(p), Math.sin(p), -Math.sin(p * 1e-2), Math.cos(p * 1e-2)]; // d=4, base=1e4: pair 1 at 1e4^(-1/2)
  for (const isa of ['ref' as const, ...ISAS]) {
    assertClose(K.rope(isa, x, 1, 4, p, 10000), want, 1e-6, 1e-6, `${isa} known`);
    const r = randomFloats(3 * 128, 9);
    assertClose(K.rope(isa, r, 3, 128, 0, 10000), r, 0, 0, `${isa} pos 0`);
  }
  for (const isa of ISAS)
    for (const [nh, hd, pos] of [[3, 64, 1], [2, 128, 4095], [4, 96, 17], [1, 6, 5]]) {
      const r = randomFloats(nh * hd, pos + hd);
      assertClose(K.rope(isa, r, nh, hd, pos, 10000), K.rope('ref', r, nh, hd, pos, 10000), 0, 2e-6, `${isa} ${nh}x${hd}@${pos}`);
    }
});

test('softmax matches the reference and sums to one', () => {
  assertClose(K.softmax('ref', Float32Array.from([0, Math.log(3)])), [0.25, 0.75], 1e-6, 0, 'known');
  for (const isa of ISAS)
    for (const n of SIZES) {
      const x = randomFloats(n, n * 3, 20);
      const y = K.softmax(isa, x);
      assertClose(y, K.softmax('ref', x), 1e-6, 1e-9, `${isa} n=${n}`);
      assert.ok(Math.abs(y.reduce((s, v) => s + v, 0) - 1) < 1e-5);
    }
});

test('FFN activations: swiglu, relu_glu, drelu', () => {
  const g = Float32Array.from([-2, -0.5, 0, 0.5, 3]);
  const u = Float32Array.from([1, -1, 2, -2, 0.5]);
  const silu = (v: number) => v / (1 + Math.exp(-v));
  const want = {
    swiglu: Array.from(g, (v, i) => silu(v) * u[i]),
    relu_glu: Array.from(g, (v, i) => Math.max(v, 0) * u[i]),
    drelu: Array.from(g, (v, i) => Math.max(v, 0) * Math.max(u[i], 0)),
  };
  for (const act of ['swiglu', 'relu_glu', 'drelu'] as const) {
    for (const isa of ['ref' as const, ...ISAS]) assertClose(K.ffnAct(isa, act, g, u), want[act], 1e-6, 1e-7, `${isa} ${act} known`);
    for (const isa of ISAS)
      for (const n of SIZES) {
        const a = randomFloats(n, n, 12), b = randomFloats(n, n + 5, 3);
        assertClose(K.ffnAct(isa, act, a, b), K.ffnAct('ref', act, a, b), 1e-6, 1e-7, `${isa} ${act} n=${n}`);
      }
  }
});

test('f32 -> f16 rounds to nearest even, like the reference, on every ISA', () => {
  const x = Float32Array.from([
    0, -0, 1, -1, 65504, 65519.99, 65520, 1e6, -1e6, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 3 * 2 ** -25,
    2 ** -14, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 0.1, -0.3, Infinity, -Infinity, 1e-10,
    ...randomFloats(200, 3, 100),
  ]);
  const ref = K.f32ToF16('ref', x);
  // worked values: ties go to even; 65520 overflows; 2^-25 ties to 0, just above it to 2^-24
  assert.deepEqual(Array.from(ref.subarray(0, 17)), [
    0, 0x8000, 0x3c00, 0xbc00, 0x7bff, 0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x0001, 0x0000, 0x0001, 0x0002, 0x0400, 0x3c00,
    0x3c02, 0x2e66,
  ]);
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i]) || Math.abs(x[i]) >= 65520) continue;
    const back = f16ToNumber(ref[i]);
    assert.ok(Math.abs(back - x[i]) <= Math.max(Math.abs(x[i]) * 2 ** -11, 2 ** -25), `element ${i}`);
  }
  for (const isa of ISAS) assert.deepEqual(K.f32ToF16(isa, x), ref, isa);
});

test('dot f32, dot f32 x f16 and axpy f16 against double-precision sums', () => {
  for (const isa of ISAS)
    for (const n of SIZES) {
      const a = randomFloats(n, n, 2), b = randomFloats(n, 2 * n, 2);
      const h = K.f32ToF16('ref', b);
      let s = 0, sh = 0, mag = 0;
      for (let i = 0; i < n; i++) {
        s += a[i] * b[i];
        sh += a[i] * f16ToNumber(h[i]);
        mag += Math.abs(a[i] * b[i]);
      }
      assert.ok(Math.abs(K.dotF32(isa, a, b) - s) <= 1e-6 * mag + 1e-7, `${isa} dotF32 n=${n}`);
      assert.ok(Math.abs(K.dotF32F16(isa, a, h) - sh) <= 1e-6 * mag + 1e-7, `${isa} dotF32F16 n=${n}`);
      const y = K.axpyF16(isa, a, 0.75, h);
      assertClose(y, Array.from(a, (v, i) => v + 0.75 * f16ToNumber(h[i])), 1e-6, 1e-7, `${isa} axpy n=${n}`);
    }
});

test('attention head matches the reference (contiguous and strided KV rows)', () => {
  for (const [tLen, headDim, stride] of [[1, 64, 64], [7, 64, 256], [300, 128, 128], [33, 16, 40]]) {
    const q = randomFloats(headDim, tLen, 1);
    const k = K.f32ToF16('ref', randomFloats((tLen - 1) * stride + headDim, tLen + 1, 1));
    const v = K.f32ToF16('ref', randomFloats((tLen - 1) * stride + headDim, tLen + 2, 1));
    const scale = 1 / Math.sqrt(headDim);
    const ref = K.attentionHead('ref', q, k, v, tLen, headDim, stride, scale);
    if (tLen === 1) assertClose(ref, Array.from({ length: headDim }, (_, i) => f16ToNumber(v[i])), 1e-6, 0, 'one position = v');
    for (const isa of ISAS)
      assertClose(K.attentionHead(isa, q, k, v, tLen, headDim, stride, scale), ref, 1e-5, 1e-6, `${isa} t=${tLen} d=${headDim}`);
  }
});

test('stream read touches every byte in every read pattern, aligned or not (the checksum sees a one-byte change)', () => {
  const whole = Buffer.alloc((1 << 20) + 77 + 64);
  for (let i = 0; i < whole.length; i++) whole[i] = (i * 131) & 0xff;
  for (const offset of [0, 3, 64]) {
    const b = whole.subarray(offset, offset + (1 << 20) + 77);
    for (const isa of ISAS) {
      for (const pattern of [0, 1, 2, 3]) {
        // Every 7th byte around the edges the loops have (the unaligned head, the middle
        // where two streams split, the end of the vector part and the tail), and a few more.
        const near = (c: number) => Array.from({ length: 86 }, (_, i) => c - 300 + 7 * i).filter((x) => x >= 0 && x < b.length);
        for (const at of [...near(0), ...near(b.length >> 1), ...near(b.length - 1), 12345, 777_777, b.length - 1]) {
          const before = K.streamRead(b, isa, pattern);
          b[at] ^= 0x10;
          const after = K.streamRead(b, isa, pattern);
          b[at] ^= 0x10;
          assert.equal(typeof before.checksum, 'bigint');
          assert.notEqual(before.checksum, after.checksum, `${isa} pattern ${pattern} offset ${offset}: byte ${at}`);
          assert.ok(before.gbPerS > 0);
        }
      }
    }
  }
  assert.throws(() => K.streamRead(whole, 'best', 4), /pattern/);
});
