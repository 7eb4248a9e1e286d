// makePickerFactory: each request's sampler gets its settings, its seed and the prompt
// (for penalties), and logprobs only when the request asked for them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makePickerFactory } from '../../server/scheduler/picker.js';
import type { SamplingSettings } from '../../server/http/validate.js';

const NV = 6;
const greedy: SamplingSettings = { temperature: 0, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, seed: undefined, logitBias: new Map() };
const logits = Float32Array.from([0, 1, 5, 2, 3, 0.5]);

test('no logprobs unless asked; with top_logprobs the top alternatives come in order', () => {
  const f = makePickerFactory(NV);
  const plain = f({ settings: greedy, seed: 1, prompt: [], topLogprobs: null })(logits);
  assert.deepEqual(plain, { token: 2 });
  const withLp = f({ settings: greedy, seed: 1, prompt: [], topLogprobs: 2 })(logits);
  assert.equal(withLp.token, 2);
  assert.ok(typeof withLp.logprob === 'number' && withLp.logprob < 0 && withLp.logprob > -1, `${withLp.logprob}`);
  assert.deepEqual(withLp.top?.map((t) => t.token), [2, 4]);
  // top_logprobs 0: the chosen token's logprob, no alternatives.
  const zero = f({ settings: greedy, seed: 1, prompt: [], topLogprobs: 0 })(logits);
  assert.equal(typeof zero.logprob, 'number');
  assert.deepEqual(zero.top ?? [], []);
});

test('settings reach the sampler: logit_bias, penalties over the prompt, seed', () => {
  const f = makePickerFactory(NV);
  const biased = f({ settings: { ...greedy, logitBias: new Map([[1, 10]]) }, seed: 1, prompt: [], topLogprobs: null });
  assert.equal(biased(logits).token, 1);
  // Each penalty, applied to the prompt's tokens, moves greedy off token 2 (logit 5) to 4 (logit 3).
  const pick = (s: Partial<SamplingSettings>, prompt: number[]) => f({ settings: { ...greedy, ...s }, seed: 1, prompt, topLogprobs: null })(logits).token;
  assert.equal(pick({ repetitionPenalty: 2 }, [2]), 4); // 5 / 2 = 2.5
  const nudge = new Map([[4, 0.5]]); // token 4 at 3.5
  assert.equal(pick({ presencePenalty: 2, logitBias: nudge }, [2, 1]), 4); // 5 - 2 = 3
  assert.equal(pick({ presencePenalty: 2, logitBias: nudge }, [1]), 2);
  assert.equal(pick({ frequencyPenalty: 1.5 }, [2, 2]), 4); // 5 - 3 = 2
  assert.equal(pick({ repetitionPenalty: 2 }, []), 2);
  assert.equal(pick({ frequencyPenalty: 1.5 }, [1, 1]), 2);
  // Same seed, same draws; the stream is the seed's.
  const hot = { ...greedy, temperature: 1.5 };
  const draws = (seed: number) => {
    const p = f({ settings: hot, seed, prompt: [], topLogprobs: null });
    return Array.from({ length: 40 }, () => p(logits).token);
  };
  assert.deepEqual(draws(7), draws(7));
  assert.notDeepEqual(draws(7), draws(8));
});
