// Every sampling field of a request reaches the sampler of every choice with its value:
// the HTTP body -> validate.ts -> SamplingSettings -> picker.ts -> Sampler chain. The
// real tiny model; Sampler.prototype.sample is wrapped to record each sampler's params.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp, type App } from '../../server/app.js';
import { tinyRuntime } from '../e2e/server.js';
import { Sampler } from '../../server/sampling/sampler.js';
import type { SamplingParams } from '../../server/sampling/params.js';
import type { ModelRuntime } from '../../server/scheduler/runtime.js';

let rt: ModelRuntime;
let app: App;
const seen = new Map<Sampler, { params: SamplingParams; seed: bigint }>();
const original = Sampler.prototype.sample;
before(async () => {
  Sampler.prototype.sample = function (this: Sampler, ...args: Parameters<Sampler['sample']>) {
    seen.set(this, { params: this.params, seed: this.seed });
    return original.apply(this, args);
  };
  rt = await tinyRuntime({ parallel: 2, ctxSize: 128 });
  app = await buildApp({ runtime: rt, ownsRuntime: false, defaultMetrics: false });
  await app.modelReady;
});
after(async () => {
  Sampler.prototype.sample = original;
  await app.close();
  rt.dispose();
});

const FIELDS = {
  temperature: 0.7, top_p: 0.9, top_k: 5, min_p: 0.05, presence_penalty: 0.5, frequency_penalty: -0.25,
  repetition_penalty: 1.1, seed: 1234, logit_bias: { '5': 2.5, '7': -100 },
};

function check(n: number) {
  const samplers = [...seen.values()];
  assert.equal(samplers.length, n, 'one sampler per choice');
  const seeds = samplers.map((s) => s.seed).sort();
  assert.deepEqual(seeds, Array.from({ length: n }, (_, i) => BigInt(FIELDS.seed + i)), 'choice i samples with seed + i');
  for (const { params: p } of samplers) {
    assert.equal(p.temperature, FIELDS.temperature);
    assert.equal(p.topP, FIELDS.top_p);
    assert.equal(p.topK, FIELDS.top_k);
    assert.equal(p.minP, FIELDS.min_p);
    assert.equal(p.presencePenalty, FIELDS.presence_penalty);
    assert.equal(p.frequencyPenalty, FIELDS.frequency_penalty);
    assert.equal(p.repetitionPenalty, FIELDS.repetition_penalty);
    assert.deepEqual([...p.logitBias].sort(), [[5, 2.5], [7, -100]]);
  }
}

for (const [route, body] of [
  ['/v1/completions', { prompt: 'Once upon a time' }],
  ['/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] }],
] as const) {
  test(`${route}: every sampling field reaches each choice's sampler`, async () => {
    seen.clear();
    const res = await app.inject({ method: 'POST', url: route, payload: { ...body, ...FIELDS, n: 2, max_tokens: 2 } });
    assert.equal(res.statusCode, 200, res.body);
    check(2);
  });
}

test('defaults: fields left out reach the sampler as their documented defaults', async () => {
  seen.clear();
  const res = await app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: 'Once', max_tokens: 1 } });
  assert.equal(res.statusCode, 200);
  const [{ params: p }] = [...seen.values()];
  assert.deepEqual(
    { t: p.temperature, topP: p.topP, topK: p.topK, minP: p.minP, pp: p.presencePenalty, fp: p.frequencyPenalty, rp: p.repetitionPenalty, bias: p.logitBias.size },
    { t: 1, topP: 1, topK: 0, minP: 0, pp: 0, fp: 0, rp: 1, bias: 0 },
  );
});
