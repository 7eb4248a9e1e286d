// portable-math: fdlibm's log and exp (used by make-model so that the C++ generator in
// tools/device-check writes the same bytes) against the engine's Math functions, which
// differ from them by at most an ulp; the C++ copy is compared bit for bit in
// make-model-native.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exp, ldexp, log, pow } from '../../server/gguf/portable-math.js';
import { Rng } from '../../server/sampling/rng.js';

/** Distance in units of the last place between two finite doubles of the same sign. */
function ulps(a: number, b: number): number {
  const v = new DataView(new ArrayBuffer(16));
  v.setFloat64(0, a);
  v.setFloat64(8, b);
  const d = v.getBigInt64(0) - v.getBigInt64(8);
  return Number(d < 0n ? -d : d);
}

test('log is within an ulp of Math.log, from subnormals to the largest double', () => {
  const rng = new Rng(1n, 7);
  const xs = [1, 2, 0.5, Math.E, 10, 1 + 2 ** -30, 1 - 2 ** -30, 0.7071067811865476, 1.4142135623730951, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308];
  for (let i = 0; i < 20000; i++) xs.push(rng.nextDouble() * 2 ** (Math.floor(rng.nextDouble() * 2000) - 1000));
  for (let i = 0; i < 2000; i++) xs.push(1 + (rng.nextDouble() - 0.5) * 2 ** -18); // the |f| < 2^-20 path
  for (const x of xs) {
    if (x === 0) continue;
    assert.ok(ulps(log(x), Math.log(x)) <= 1, `log(${x}) = ${log(x)}, Math.log ${Math.log(x)}`);
  }
  assert.equal(log(1), 0);
  assert.equal(log(0), -Infinity);
  assert.ok(Number.isNaN(log(-1)));
  assert.ok(Number.isNaN(log(NaN)));
  assert.equal(log(Infinity), Infinity);
});

test('exp is within an ulp of Math.exp over its whole range', () => {
  const rng = new Rng(2n, 7);
  const xs = [0, 1, -1, 0.5, -0.5, 0.34657359, 1.0397, 2 ** -29, -(2 ** -29), 709.7, -708, -740, -745];
  for (let i = 0; i < 20000; i++) xs.push((rng.nextDouble() - 0.5) * 1400);
  for (let i = 0; i < 5000; i++) xs.push((rng.nextDouble() - 0.5) * 4);
  for (const x of xs) {
    const want = Math.exp(x);
    // below 2^-1022 the result is subnormal: compare absolutely, in units of the smallest subnormal
    const tol = want < 2.2250738585072014e-308 ? Math.abs(exp(x) - want) <= 5e-324 : ulps(exp(x), want) <= 1;
    assert.ok(tol, `exp(${x}) = ${exp(x)}, Math.exp ${want}`);
  }
  assert.equal(exp(710), Infinity);
  assert.equal(exp(-746), 0);
  assert.equal(exp(Infinity), Infinity);
  assert.equal(exp(-Infinity), 0);
  assert.ok(Number.isNaN(exp(NaN)));
});

test('pow(x, y) for x > 0 agrees with Math.pow to 2 + 4 |y ln x| ulps; ldexp is exact', () => {
  const rng = new Rng(3n, 7);
  for (let i = 0; i < 20000; i++) {
    const x = 1 + Math.floor(rng.nextDouble() * 20000);
    const y = -rng.nextDouble() * 4;
    const want = Math.pow(x, y);
    const bound = 2 + 4 * Math.abs(y * Math.log(x));
    assert.ok(ulps(pow(x, y), want) <= bound, `pow(${x}, ${y}) = ${pow(x, y)}, Math.pow ${want}`);
  }
  assert.equal(pow(1, -1.5), 1);
  assert.equal(pow(7, 0), 1);
  assert.ok(Number.isNaN(pow(0, 2)));
  assert.ok(Number.isNaN(pow(-2, 2)));
  for (let n = -1074; n <= 1023; n++) assert.equal(ldexp(1, n), 2 ** n, `2^${n}`);
  assert.equal(ldexp(3, -2), 0.75);
  assert.throws(() => ldexp(1, 0.5), RangeError);
});
