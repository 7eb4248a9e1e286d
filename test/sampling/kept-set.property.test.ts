// Property tests: top-k, top-p and min-p keep exactly the set their definitions give.
// The reference is the plain one: sort every finite logit (larger first, lower id on
// ties), take k, cut the shortest prefix whose probability reaches p, drop what is
// below minP x the best. Logits come from a small grid so ties are common.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import '../fc-seed.js';
import { keptCandidates } from '../../server/sampling/sampler.js';
import { resolveSamplingParams } from '../../server/sampling/params.js';
import { massPrefix, topK, argmax } from '../../server/sampling/select.js';

const RUNS = 400;

/** Logits on a grid of quarters (ties), with some -Infinity, as float32. */
const logitsArb = fc
  .array(fc.oneof({ weight: 9, arbitrary: fc.integer({ min: -12, max: 12 }).map((q) => q / 4) }, { weight: 1, arbitrary: fc.constant(-Infinity) }), { minLength: 1, maxLength: 60, size: 'max' })
  .map((xs) => new Float32Array(xs));

/** Finite ids, best first, lower id first on ties. */
function sortedIds(w: Float32Array): number[] {
  const ids = [...w.keys()].filter((i) => w[i] > -Infinity);
  return ids.sort((a, b) => w[b] - w[a] || a - b);
}

/**
 * The kept sets the definitions allow: usually one; two when the cumulative mass lands
 * within rounding of p x total at the top-p cut (then cutting one earlier or later are
 * both correct up to float summation order).
 */
function referenceSets(w: Float32Array, t: number, k: number, p: number, minP: number): number[][] {
  let ids = sortedIds(w);
  if (ids.length === 0) return [[]];
  if (k > 0 && k < w.length) ids = ids.slice(0, k);
  const lmax = w[ids[0]];
  const weight = (id: number) => Math.exp((w[id] - lmax) / t);
  const z = ids.reduce((a, id) => a + weight(id), 0);
  let cuts = [ids.length];
  if (p < 1) {
    const target = p * z;
    let cum = 0;
    cuts = [];
    for (let i = 0; i < ids.length; i++) {
      cum += weight(ids[i]);
      const slack = 1e-9 * z;
      if (Math.abs(cum - target) <= slack) cuts.push(i + 1, i + 2);
      if (cum >= target + slack || i === ids.length - 1) {
        cuts.push(i + 1);
        break;
      }
    }
    cuts = [...new Set(cuts.map((c) => Math.min(c, ids.length)))];
  }
  return cuts.map((c) => ids.slice(0, c).filter((id) => minP === 0 || weight(id) >= minP).sort((a, b) => a - b));
}

const paramsArb = fc.record({
  t: fc.constantFrom(0.25, 0.5, 1, 1.7, 3),
  k: fc.integer({ min: 0, max: 70 }),
  p: fc.oneof(fc.constant(1), fc.constantFrom(0.1, 0.5, 0.9, 0.95), fc.double({ min: 0, max: 1, noNaN: true })),
  minP: fc.oneof(fc.constant(0), fc.constantFrom(0.05, 0.1, 0.5, 1), fc.double({ min: 0, max: 1, noNaN: true })),
});

test('the kept set after top-k, top-p and min-p is the one the definitions give', () => {
  fc.assert(
    fc.property(logitsArb, paramsArb, (w, { t, k, p, minP }) => {
      const params = resolveSamplingParams({ temperature: t, topK: k, topP: p, minP }, w.length);
      const got = keptCandidates(w, params).ids.sort((a, b) => a - b);
      const allowed = referenceSets(w, t, k, p, minP);
      assert.ok(allowed.some((s) => JSON.stringify(s) === JSON.stringify(got)), `kept ${JSON.stringify(got)}, expected one of ${JSON.stringify(allowed)}`);
    }),
    { numRuns: RUNS },
  );
});

test('each filter alone: top-k, top-p and min-p keep their reference set', () => {
  const one = fc.oneof(
    fc.record({ t: fc.constant(1), k: fc.integer({ min: 1, max: 70 }), p: fc.constant(1), minP: fc.constant(0) }),
    fc.record({ t: fc.constant(1), k: fc.constant(0), p: fc.double({ min: 0, max: 0.999, noNaN: true }), minP: fc.constant(0) }),
    fc.record({ t: fc.constant(1), k: fc.constant(0), p: fc.constant(1), minP: fc.double({ min: 0.001, max: 1, noNaN: true }) }),
  );
  fc.assert(
    fc.property(logitsArb, one, (w, { t, k, p, minP }) => {
      const params = resolveSamplingParams({ temperature: t, topK: k, topP: p, minP }, w.length);
      const got = keptCandidates(w, params).ids.sort((a, b) => a - b);
      const allowed = referenceSets(w, t, k, p, minP);
      assert.ok(allowed.some((s) => JSON.stringify(s) === JSON.stringify(got)), `kept ${JSON.stringify(got)}, expected one of ${JSON.stringify(allowed)}`);
    }),
    { numRuns: RUNS },
  );
});

test('the kept weights are exp((logit - best) / T) of each kept id', () => {
  fc.assert(
    fc.property(logitsArb, paramsArb, (w, { t, k, p, minP }) => {
      const params = resolveSamplingParams({ temperature: t, topK: k, topP: p, minP }, w.length);
      const { ids, weights } = keptCandidates(w, params);
      const best = sortedIds(w)[0];
      ids.forEach((id, i) => assert.ok(Math.abs(weights[i] - Math.exp((w[id] - w[best]) / t)) <= 1e-12, `weight of ${id}`));
    }),
    { numRuns: RUNS },
  );
});

test('topK returns the k best ids in order (larger first, lower id on ties)', () => {
  fc.assert(
    fc.property(logitsArb, fc.integer({ min: 1, max: 70 }), (w, k) => {
      const out = new Int32Array(k);
      const n = topK(w, k, out);
      assert.deepEqual(Array.from(out.subarray(0, n)), sortedIds(w).slice(0, k));
    }),
    { numRuns: RUNS },
  );
});

test('argmax is the first id of the sorted order, -1 when none is finite', () => {
  fc.assert(
    fc.property(logitsArb, (w) => {
      assert.equal(argmax(w), sortedIds(w)[0] ?? -1);
    }),
    { numRuns: RUNS },
  );
});

test('massPrefix keeps exactly the shortest best-first prefix reaching the target', () => {
  // Integer weights make every sum exact, so the reference cut has no rounding slack.
  const arb = fc.array(fc.record({ v: fc.integer({ min: -6, max: 6 }), e: fc.integer({ min: 1, max: 9 }) }), { minLength: 1, maxLength: 80, size: 'max' });
  fc.assert(
    fc.property(arb, fc.double({ min: 0, max: 1, noNaN: true }), (items, frac) => {
      const w = new Float32Array(items.map((x) => x.v));
      const byId = items.map((x) => x.e);
      const total = byId.reduce((a, b) => a + b, 0);
      const target = Math.max(1, Math.ceil(frac * total));
      const ids = Int32Array.from(w.keys());
      const e = Float64Array.from(byId);
      const kept = massPrefix(w, ids, e, ids.length, target);
      const order = sortedIds(w);
      let cum = 0;
      let cut = 0;
      while (cut < order.length && cum < target) cum += byId[order[cut++]];
      assert.deepEqual(Array.from(ids.subarray(0, kept)).sort((a, b) => a - b), order.slice(0, cut).sort((a, b) => a - b));
      // Weights stay aligned with their ids.
      ids.forEach((id, i) => assert.equal(e[i], byId[id]));
    }),
    { numRuns: RUNS },
  );
});

test('exact boundaries: mass landing exactly on p keeps the boundary token; minP = 1 keeps every tie of the best', () => {
  // Equal finite logits weigh exactly 1 each, so p x total is reached exactly at a known
  // count; the rounding slack of the general reference plays no part here.
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }).map((q) => q * 4),
      fc.integer({ min: 0, max: 30 }),
      fc.constantFrom(0.25, 0.5, 0.75),
      fc.boolean(),
      (n, banned, p, withTopK) => {
        const w = new Float32Array(n + banned).fill(-Infinity).fill(1.5, 0, n);
        const k = withTopK ? n : 0; // k < length only when some ids are banned
        const params = resolveSamplingParams({ temperature: 1, topK: k, topP: p }, w.length);
        assert.deepEqual(keptCandidates(w, params).ids.sort((a, b) => a - b), [...Array(n * p).keys()]);
        const ties = resolveSamplingParams({ temperature: 0.7, topK: k, minP: 1 }, w.length);
        assert.deepEqual(keptCandidates(w, ties).ids.sort((a, b) => a - b), [...Array(n).keys()]);
      },
    ),
    { numRuns: 200 },
  );
});
