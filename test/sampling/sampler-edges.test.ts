// Edges of the sampler that the table and property tests did not reach (found by
// mutation testing, npm run mutate): the vocabulary size check, what a result holds
// when no logprobs are asked, a temperature so small that 1/T overflows, every token
// banned on the drawing path, and top_k at or above the vocabulary size being off.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler, SamplingError, keptCandidates } from '../../server/sampling/sampler.js';
import { resolveSamplingParams } from '../../server/sampling/params.js';
import { Rng } from '../../server/sampling/rng.js';

const L = (xs: number[]) => new Float32Array(xs);

test('the vocabulary size must be a positive integer', () => {
  for (const n of [0, -1, 2.5, NaN]) {
    assert.throws(() => new Sampler({}, n), (e: unknown) => e instanceof RangeError && e.message === `nVocab must be a positive integer, got ${n}`);
  }
  assert.equal(new Sampler({}, 1).sample(L([0])).token, 0);
});

test('a result holds the token alone unless logprobs are asked; logprobs alone add no alternatives', () => {
  const logits = L([0.5, 2, 1]);
  assert.deepEqual(new Sampler({ temperature: 0 }, 3).sample(logits), { token: 1 });
  assert.deepEqual(new Sampler({ temperature: 0.7, seed: 4 }, 3).sample(logits, { topLogprobs: 0 }).logprob, undefined);
  const r = new Sampler({ temperature: 0 }, 3).sample(logits, { logprobs: true });
  assert.deepEqual(Object.keys(r).sort(), ['logprob', 'token']);
  const z = Math.log(Math.exp(0.5) + Math.exp(2) + Math.exp(1));
  assert.ok(Math.abs(r.logprob! - (2 - z)) < 1e-6);
  // top_logprobs alone brings the chosen token's logprob too (OpenAI returns both).
  const t = new Sampler({ temperature: 0 }, 3).sample(logits, { topLogprobs: 2 });
  assert.ok(Math.abs(t.logprob! - (2 - z)) < 1e-6);
  assert.deepEqual(t.top!.map((x) => x.token), [1, 2]);
});

test('a temperature whose inverse overflows is greedy, lowest id on ties', () => {
  const s = new Sampler({ temperature: 1e-310, seed: 3 }, 5);
  for (let i = 0; i < 50; i++) assert.equal(s.sample(L([1, 4, -2, 4, 3.999])).token, 1);
});

test('every token banned fails with SamplingError on the drawing paths too (plain, top-k, top-p)', () => {
  const banAll = { 0: -Infinity, 1: -Infinity, 2: -Infinity };
  for (const extra of [{}, { topK: 2 }, { topP: 0.5 }, { minP: 0.1 }]) {
    const s = new Sampler({ temperature: 1, seed: 1, logitBias: banAll, ...extra }, 3);
    assert.throws(() => s.sample(L([1, 2, 3])), SamplingError, JSON.stringify(extra));
  }
  // NaN logits are never possible either.
  assert.throws(() => new Sampler({ temperature: 1, seed: 1 }, 2).sample(L([NaN, NaN])), SamplingError);
});

test('top_k at or above the vocabulary size is off: the same draws as top_k 0 (id-order walk)', () => {
  const logits = L([0, 1, 2, 3, 2.5, -1]);
  const run = (topK: number) => {
    const s = new Sampler({ temperature: 1, topK, seed: 77 }, logits.length);
    return Array.from({ length: 64 }, () => s.sample(logits).token);
  };
  const off = run(0);
  assert.deepEqual(run(6), off);
  assert.deepEqual(run(7), off);
  // The control: a real top-k (best-first walk, one token cut) does draw differently.
  assert.notDeepEqual(run(5), off);
});

test('when every token is banned the error says so', () => {
  const s = new Sampler({ temperature: 1, seed: 1, logitBias: { 0: -Infinity, 1: -Infinity } }, 2);
  assert.throws(() => s.sample(L([1, 2])), (e: unknown) => e instanceof SamplingError && e.message === 'no token can be sampled: every logit is -Infinity or NaN (check logit_bias)');
});

test('a draw sees only its own row: what other samplers left in the shared scratch does not weigh in', () => {
  // Row B keeps two equally likely tokens (top-k 2); before each of its draws another
  // sampler fills the scratch with three equal weights. B's draws must be exactly
  // u < 1 ? 0 : 1 for u = 2 x (its stream's next double).
  const other = new Sampler({ temperature: 1, seed: 9 }, 3);
  const b = new Sampler({ temperature: 1, topK: 2, seed: 42 }, 3);
  const rng = new Rng(42);
  for (let i = 0; i < 300; i++) {
    other.sample(L([0, 0, 0]));
    const want = rng.nextDouble() * 2 < 1 ? 0 : 1;
    assert.equal(b.sample(L([0, 0, -50])).token, want, `draw ${i}`);
  }
});

test('top_p 1 keeps every finite token, even those lighter than the rounding of the total', () => {
  // exp(-37) is below half an ulp of 1: the total weight rounds to exactly the best token's.
  const w = L([0, -37, -37, -Infinity]);
  assert.deepEqual(keptCandidates(w, resolveSamplingParams({ topP: 1 }, 4)).ids, [0, 1, 2]);
  assert.deepEqual(keptCandidates(w, resolveSamplingParams({ topP: 1, topK: 3 }, 4)).ids, [0, 1, 2]);
});

test('logprobs are finite when the last token is banned', () => {
  const s = new Sampler({ temperature: 0, logitBias: { 3: -Infinity } }, 4);
  const r = s.sample(L([1, 2, 0.5, 3]), { logprobs: true, topLogprobs: 3 });
  const z = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(0.5));
  assert.equal(r.token, 1);
  assert.ok(Math.abs(r.logprob! - (2 - z)) < 1e-6, `${r.logprob}`);
  assert.deepEqual(r.top!.map((t) => t.token), [1, 0, 2]);
});
