// Property tests: logit_bias and the penalties change exactly the ids they should, by
// exactly the definitions in sampler.ts, for random logits, histories and settings.
// The processed logits are read back through logprobs (differences of log-probabilities
// are differences of processed logits).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import '../fc-seed.js';
import { Sampler } from '../../server/sampling/sampler.js';

const NV = 24;
/** An id no history or bias ever touches: the yardstick for the others. */
const REF = NV - 1;

const caseArb = fc.record({
  logits: fc.array(fc.integer({ min: -20, max: 20 }).map((q) => q / 4), { minLength: NV, maxLength: NV }),
  history: fc.array(fc.integer({ min: 0, max: NV - 2 }), { maxLength: 40, size: 'max' }),
  window: fc.constantFrom(-1, 0, 1, 3, 8, 64),
  rp: fc.constantFrom(1, 0.5, 1.3, 2),
  pp: fc.constantFrom(0, -1, 0.5, 2),
  fp: fc.constantFrom(0, -0.5, 0.25, 1),
  bias: fc.dictionary(fc.integer({ min: 0, max: NV - 2 }).map(String), fc.oneof(fc.integer({ min: -8, max: 8 }).map((x) => x / 2), fc.constant(-Infinity)), { maxKeys: 5 }),
});

type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

/** Processed logit the definitions give for one id, in float32 steps like the sampler's buffer. */
function expected(c: Case, id: number): number {
  const f32 = Math.fround;
  let v = f32(c.logits[id]);
  if (c.bias[id] !== undefined) v = f32(v + c.bias[id]);
  const seen = c.window === -1 ? c.history : c.window === 0 ? [] : c.history.slice(-c.window);
  const count = seen.filter((t) => t === id).length;
  if (count > 0 && (c.rp !== 1 || c.pp !== 0 || c.fp !== 0)) {
    if (c.rp !== 1) v = v > 0 ? v / c.rp : v * c.rp;
    v = f32(v - count * c.fp - c.pp);
  }
  return v;
}

test('bias and penalties move exactly the ids the definitions name, by the defined amount', () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      c.logits[REF] = 0;
      const s = new Sampler({ temperature: 0, repetitionPenalty: c.rp, presencePenalty: c.pp, frequencyPenalty: c.fp, penaltyLastN: c.window, logitBias: c.bias }, NV);
      s.acceptMany(c.history);
      const finite = c.logits.map((_, id) => expected(c, id)).filter((v) => v > -Infinity).length;
      const r = s.sample(new Float32Array(c.logits), { topLogprobs: NV });
      const lp = new Map(r.top!.map((t) => [t.token, t.logprob]));
      assert.equal(lp.size, finite, 'every id that is not banned has a log-probability');
      for (let id = 0; id < NV; id++) {
        const want = expected(c, id);
        if (want === -Infinity) {
          assert.ok(!lp.has(id), `id ${id} is banned`);
          continue;
        }
        const got = lp.get(id)! - lp.get(REF)!;
        assert.ok(Math.abs(got - want) <= 1e-5, `id ${id}: processed ${got}, expected ${want}`);
      }
    }),
    { numRuns: 500 },
  );
});
