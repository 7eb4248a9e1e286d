// resolveSamplingParams at the edges of every range (each end accepted, one step past it
// refused, naming the parameter), and which logit_bias keys are token ids: only plain
// decimal digits, as in OpenAI's JSON. Found missing by mutation testing (npm run mutate).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveSamplingParams, SamplingParamError, DEFAULT_SAMPLING } from '../../server/sampling/params.js';

const NV = 20;
const refused = (p: Parameters<typeof resolveSamplingParams>[0], param: string, message: RegExp) =>
  assert.throws(
    () => resolveSamplingParams(p, NV),
    (e: unknown) => e instanceof SamplingParamError && e.name === 'SamplingParamError' && e.param === param && message.test(e.message),
    `${JSON.stringify(p, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))} should be refused as ${param}`,
  );

test('defaults fill every field', () => {
  const p = resolveSamplingParams({}, NV);
  const { logitBias, ...rest } = p;
  const { logitBias: _d, ...defaults } = DEFAULT_SAMPLING;
  assert.deepEqual(rest, defaults);
  assert.deepEqual([...logitBias], []);
  assert.deepEqual(defaults, {
    temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, presencePenalty: 0, frequencyPenalty: 0, penaltyLastN: 64, seed: undefined,
  });
});

test('each end of every range is accepted', () => {
  const ends: Parameters<typeof resolveSamplingParams>[0][] = [
    { temperature: 0 }, { topK: 0 }, { topK: NV * 10 }, { topP: 0 }, { topP: 1 }, { minP: 0 }, { minP: 1 },
    { presencePenalty: -2 }, { presencePenalty: 2 }, { frequencyPenalty: -2 }, { frequencyPenalty: 2 },
    { penaltyLastN: -1 }, { penaltyLastN: 0 }, { repetitionPenalty: 1e-9 }, { seed: 0 }, { seed: -5 }, { seed: 2n ** 70n },
  ];
  for (const p of ends) {
    const r = resolveSamplingParams(p, NV);
    const [key, value] = Object.entries(p)[0];
    assert.equal((r as unknown as Record<string, unknown>)[key], value, key);
  }
});

test('one step past each end is refused, naming the parameter', () => {
  refused({ temperature: -1e-9 }, 'temperature', /^temperature must be >= 0, got -1e-9$/);
  refused({ temperature: Infinity }, 'temperature', /^temperature must be a finite number, got Infinity$/);
  refused({ topK: -1 }, 'top_k', /^top_k must be an integer >= 0, got -1$/);
  refused({ topP: -1e-9 }, 'top_p', /^top_p must be between 0 and 1, got -1e-9$/);
  refused({ topP: 1 + 1e-9 }, 'top_p', /^top_p must be between 0 and 1/);
  refused({ minP: 1.5 }, 'min_p', /^min_p must be between 0 and 1, got 1.5$/);
  refused({ presencePenalty: -2.01 }, 'presence_penalty', /^presence_penalty must be between -2 and 2, got -2.01$/);
  refused({ frequencyPenalty: 2.01 }, 'frequency_penalty', /^frequency_penalty must be between -2 and 2, got 2.01$/);
  refused({ penaltyLastN: -2 }, 'penalty_last_n', /^penalty_last_n must be an integer >= -1, got -2$/);
  refused({ repetitionPenalty: -1 }, 'repetition_penalty', /^repetition_penalty must be > 0, got -1$/);
  refused({ repetitionPenalty: NaN }, 'repetition_penalty', /^repetition_penalty must be a finite number, got NaN$/);
  refused({ topK: 2 ** 53 }, 'top_k', /^top_k must be an integer >= 0, got 9007199254740992$/);
  refused({ seed: 2 ** 53 }, 'seed', /^seed must be an integer, got 9007199254740992$/);
  refused({ seed: '5' as unknown as number }, 'seed', /^seed must be an integer, got 5$/);
  refused({ temperature: '1' as unknown as number }, 'temperature', /^temperature must be a finite number, got 1$/);
});

test('logit_bias keys are token ids written as plain decimal digits', () => {
  const ok = resolveSamplingParams({ logitBias: { 0: 1, 12: -2.5, 19: -Infinity } }, NV).logitBias;
  assert.deepEqual([...ok].sort((a, b) => a[0] - b[0]), [[0, 1], [12, -2.5], [19, -Infinity]]);
  const fromMap = resolveSamplingParams({ logitBias: new Map([[3, 0.5]]) }, NV).logitBias;
  assert.deepEqual([...fromMap], [[3, 0.5]]);
  for (const key of ['+1', ' 12', '12 ', '1e1', '0x1', '1.0', '-1', '', 'a1', '1a', '20']) {
    refused({ logitBias: { [key]: 1 } }, 'logit_bias', new RegExp(`^logit_bias has key ${escape(JSON.stringify(key))}, which is not a token id \\(0\\.\\.19\\)$`));
  }
  refused({ logitBias: new Map([[1.5, 1]]) }, 'logit_bias', /^logit_bias has key 1\.5, which is not a token id/);
  refused({ logitBias: new Map([[-1, 1]]) }, 'logit_bias', /^logit_bias has key -1, which is not a token id/);
});

test('logit_bias values are finite numbers or -Infinity', () => {
  for (const v of [NaN, Infinity, '1', null]) {
    refused({ logitBias: { 4: v as number } }, 'logit_bias', new RegExp(`^logit_bias value for token 4 must be a finite number or -Infinity, got ${escape(String(v))}$`));
  }
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
