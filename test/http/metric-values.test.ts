// /metrics values (not only names) after requests whose token counts are known: token
// prompts, EOS banned so every reply runs to max_tokens, one request at a time. The
// real tiny model through the real engine, driven with app.inject.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp, type App } from '../../server/app.js';
import { tinyRuntime } from '../e2e/server.js';
import type { ModelRuntime } from '../../server/scheduler/runtime.js';
import type { StepInfo } from '../../server/scheduler/types.js';

let rt: ModelRuntime;
let app: App;
const steps: StepInfo[] = [];
before(async () => {
  rt = await tinyRuntime({ parallel: 2, ctxSize: 128 });
  app = await buildApp({ runtime: rt, ownsRuntime: false, defaultMetrics: false, onStep: (s) => steps.push(s) });
  await app.modelReady;
});
after(async () => {
  await app.close();
  rt.dispose();
});

/** The value of one sample line, e.g. value(text, 'relu_serve_prompt_tokens_total'). */
function value(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(sample + ' '));
  assert.ok(line, `no sample ${sample}`);
  return Number(line.slice(sample.length + 1));
}

test('counters, histograms and gauges after known requests', async () => {
  const requests = [
    { prompt: [1, 17, 42, 99, 7], max_tokens: 4 },
    { prompt: [1, 300, 12], max_tokens: 6 },
    { prompt: [1, 5, 250, 64, 33, 128, 9], max_tokens: 1 },
  ];
  let cachedInUsage = 0;
  for (const r of requests) {
    const res = await app.inject({ method: 'POST', url: '/v1/completions', payload: { ...r, temperature: 0, logit_bias: { '2': -100 } } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().usage.completion_tokens, r.max_tokens);
    cachedInUsage += res.json().usage.prompt_tokens_details?.cached_tokens ?? 0;
  }
  const bad = await app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: [1], max_tokens: -1 } });
  assert.equal(bad.statusCode, 400);
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;

  const promptTokens = requests.reduce((a, r) => a + r.prompt.length, 0);
  const generated = requests.reduce((a, r) => a + r.max_tokens, 0);
  assert.equal(value(text, 'relu_serve_prompt_tokens_total'), promptTokens);
  assert.equal(value(text, 'relu_serve_generated_tokens_total'), generated);
  assert.equal(value(text, 'relu_serve_requests_total{route="/v1/completions",method="POST",status="200"}'), 3);
  assert.equal(value(text, 'relu_serve_requests_total{route="/v1/completions",method="POST",status="400"}'), 1);
  // One per generation request; inter-token gaps: max_tokens - 1 per request.
  assert.equal(value(text, 'relu_serve_request_duration_seconds_count'), 3);
  assert.equal(value(text, 'relu_serve_time_to_first_token_seconds_count'), 3);
  assert.equal(value(text, 'relu_serve_queue_time_seconds_count'), 3);
  assert.equal(value(text, 'relu_serve_inter_token_latency_seconds_count'), generated - requests.length);
  // Every decoded token: the prompts, and each generated token but the last of a reply.
  assert.equal(value(text, 'relu_serve_engine_steps_total'), steps.length);
  assert.equal(value(text, 'relu_serve_batch_tokens_count'), steps.length);
  // Prompt tokens a slot still held from an earlier request (prefix cache) are not decoded again.
  const cached = value(text, 'relu_serve_prompt_tokens_cached_total');
  assert.equal(cached, cachedInUsage, 'the metric counts what the replies reported as cached');
  assert.equal(value(text, 'relu_serve_batch_tokens_sum'), promptTokens - cached + generated - requests.length);
  assert.equal(value(text, 'relu_serve_batch_sequences_sum'), steps.reduce((a, s) => a + s.sequences, 0));
  // Nothing running now: the gauges read the idle loop.
  assert.equal(value(text, 'relu_serve_requests_running'), 0);
  assert.equal(value(text, 'relu_serve_requests_waiting'), 0);
  assert.equal(value(text, 'relu_serve_slots_busy'), 0);
  assert.equal(value(text, 'relu_serve_kv_cache_usage_ratio'), 0);
  // Step part times: the engine's totals in seconds (the engine ran every part).
  const parts = rt.stepParts!();
  for (const part of ['attention', 'ffn', 'output'] as const) {
    const s = value(text, `relu_serve_step_part_seconds_total{part="${part}"}`);
    assert.ok(s > 0 && s <= parts[part] / 1000, `${part}: ${s} s at the scrape, ${parts[part]} ms now`);
  }
});
