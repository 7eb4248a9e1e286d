import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../server/sampling/rng.js';

// Expected values from the reference C implementation of xoshiro128** and splitmix64
// (Vigna's published code), compiled and run once.
test('xoshiro128** matches the reference implementation', () => {
  const r = Rng.fromState(1, 2, 3, 4);
  assert.deepEqual(
    Array.from({ length: 6 }, () => r.nextU32()),
    [11520, 0, 5927040, 70819200, 2031721883, 1637235492],
  );
});

test('seeding goes through splitmix64 like the reference', () => {
  const r = new Rng(42);
  assert.deepEqual(Array.from({ length: 4 }, () => r.nextU32()), [1776835114, 4165204688, 17111135, 2317295270]);
  // number and bigint seeds are the same seed; negative numbers wrap modulo 2^64
  assert.equal(new Rng(42n).nextU32(), 1776835114);
  assert.equal(new Rng(-1).nextU32(), new Rng(2n ** 64n - 1n).nextU32());
});

test('streams of one seed differ; doubles are in [0, 1); bulk fill matches single steps', () => {
  assert.notEqual(new Rng(7, 0).nextU32(), new Rng(7, 1).nextU32());
  const r = new Rng(5);
  let lo = 1;
  let hi = 0;
  for (let i = 0; i < 100000; i++) {
    const d = r.nextDouble();
    assert.ok(d >= 0 && d < 1);
    lo = Math.min(lo, d);
    hi = Math.max(hi, d);
  }
  assert.ok(lo < 0.001 && hi > 0.999);
  const a = new Rng(9);
  const b = new Rng(9);
  const buf = new Float32Array(1000);
  a.fillUniform(buf, -2, 2);
  for (let i = 0; i < buf.length; i++) {
    assert.equal(buf[i], Math.fround(-2 + (b.nextU32() >>> 8) * (4 / 16777216)));
  }
  // Both generators are now at the same point of the stream.
  assert.equal(a.nextU32(), b.nextU32());
  assert.throws(() => new Rng(1.5), /seed must be an integer/);
});

test('a double is 53 bits: the top 27 bits of one draw, then the top 26 of the next', () => {
  for (const seed of [1, 42, 2 ** 40 + 7]) {
    const a = new Rng(seed);
    const b = new Rng(seed);
    for (let i = 0; i < 100; i++) {
      const hi = b.nextU32() >>> 5;
      const lo = b.nextU32() >>> 6;
      assert.equal(a.nextDouble(), (hi * 2 ** 26 + lo) / 2 ** 53);
    }
  }
});
