// POST /v1/completions through app.inject() on a scripted runtime (route-runtime.ts): the
// text_completion and chunk shapes, several prompts x n numbered prompt-major, echo of text
// and of token ids, integer logprobs with offsets past the echo, prompt scoring (echo +
// logprobs) streamed before the first token, best_of ranking, and the refusals.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp, type App } from '../../server/app.js';
import { best } from '../../server/http/routes/completions.js';
import type { Choice } from '../../server/http/generate.js';
import { BYTE0, routeRuntime, SPACE_HI, sseEvents, withApp } from './route-runtime.js';

const complete = (app: App, body: Record<string, unknown>) =>
  app.inject({ method: 'POST', url: '/v1/completions', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ prompt: 'hi', ...body }) });

test('whole: the text_completion shape; prompts x n numbered prompt-major; a completion keeps its first space', async () => {
  await withApp(routeRuntime({ replies: ['A', 'B', 'C', [SPACE_HI]] }), async (app) => {
    const t0 = Math.floor(Date.now() / 1000);
    const r = await complete(app, { prompt: ['hi', 'yo'], n: 2 });
    assert.equal(r.statusCode, 200);
    const b = r.json();
    assert.match(b.id, /^cmpl-[0-9a-f]{24}$/);
    assert.ok(b.created >= t0 && b.created <= t0 + 5);
    const choice = (index: number, text: string) => ({ text, index, logprobs: null, finish_reason: 'stop' });
    assert.deepEqual({ ...b, id: 0, created: 0 }, {
      id: 0, object: 'text_completion', created: 0, model: 'scripted', system_fingerprint: null,
      choices: [choice(0, 'A'), choice(1, 'B'), choice(2, 'C'), choice(3, ' hi')],
      usage: { prompt_tokens: 6, completion_tokens: 4, total_tokens: 10, prompt_tokens_details: { cached_tokens: 0 } },
    });
    assert.equal((await complete(app, {})).json().choices[0].text, 'A');
  });
});

test('echo: the prompt as written (text) or decoded (token ids), whole and as the first streamed chunk', async () => {
  await withApp(routeRuntime({ replies: ['!'] }), async (app) => {
    assert.equal((await complete(app, { prompt: 'hi there', echo: true })).json().choices[0].text, 'hi there!');
    const ids = [SPACE_HI, BYTE0 + 0x3f];
    assert.equal((await complete(app, { prompt: ids, echo: true })).json().choices[0].text, 'hi?!');
    assert.equal((await complete(app, { prompt: ids, echo: false })).json().choices[0].text, '!');
    const ev = sseEvents((await complete(app, { prompt: 'hi', echo: true, stream: true })).body);
    assert.deepEqual(ev.map((e) => e.choices), [
      [{ text: 'hi', index: 0, logprobs: null, finish_reason: null }],
      [{ text: '!', index: 0, logprobs: null, finish_reason: null }],
      [{ text: '', index: 0, logprobs: null, finish_reason: 'stop' }],
    ]);
    for (const e of ev) {
      assert.deepEqual([e.object, e.model, e.system_fingerprint, e.id], ['text_completion', 'scripted', null, ev[0].id]);
      assert.ok(!('usage' in e));
    }
    // No echo: no opening chunk.
    assert.equal(sseEvents((await complete(app, { stream: true })).body).length, 2);
    // The text as the client sent it, even one the tokenizer cannot hold (a lone surrogate).
    assert.equal((await complete(app, { prompt: 'a\ud800b', echo: true })).json().choices[0].text, 'a\ud800b!');
  });
});

test('logprobs: tokens, logprobs, top and offsets; with echo the prompt is scored first, streamed before the first token', async () => {
  await withApp(routeRuntime({ replies: ['AB'] }), async (app) => {
    assert.deepEqual((await complete(app, { logprobs: 0 })).json().choices[0].logprobs, { tokens: ['A', 'B'], token_logprobs: [-1, -1], top_logprobs: [{ A: -1 }, { B: -1 }], text_offset: [0, 1] });
    const whole = (await complete(app, { echo: true, logprobs: 0, max_tokens: 1 })).json().choices[0];
    assert.equal(whole.text, 'hiA');
    // The prompt's first token has no logprob; the generated token's offset is past the echo.
    const lp = whole.logprobs;
    assert.deepEqual([lp.tokens, lp.token_logprobs[0], lp.top_logprobs[0], lp.text_offset], [['', ' hi', 'A'], null, null, [0, 0, 2]]);
    assert.ok(lp.token_logprobs[1] < 0);
    // logprobs: 1 lists the best alternative beside the prompt token itself (all logits tie here).
    const top1 = (await complete(app, { echo: true, logprobs: 1, max_tokens: 1 })).json().choices[0].logprobs.top_logprobs[1];
    assert.equal(Object.keys(top1).length, 2);
    assert.ok(' hi' in top1);
    const ev = sseEvents((await complete(app, { echo: true, logprobs: 0, max_tokens: 1, stream: true, stream_options: { include_usage: true } })).body);
    const choices = ev.map((e) => (e.choices as { text: string; logprobs: { tokens: string[]; text_offset: number[] } | null; finish_reason: string | null }[])[0]);
    assert.deepEqual(choices.slice(0, 3).map((c) => [c.text, c.logprobs?.tokens ?? null, c.logprobs?.text_offset ?? null, c.finish_reason]), [
      ['hi', ['', ' hi'], [0, 0], null],
      ['A', ['A'], [2], null],
      ['', null, null, 'length'],
    ]);
    // The echo chunk waits for the prompt's scores.
    const echoed = (ev[0].choices as { logprobs: { token_logprobs: (number | null)[] } }[])[0].logprobs.token_logprobs;
    assert.equal(echoed[0], null);
    assert.ok(echoed[1]! < 0, `scored: ${echoed[1]}`);
    for (const e of ev.slice(0, -1)) assert.equal(e.usage, null);
    assert.deepEqual([ev[3].object, ev[3].id, ev[3].choices, (ev[3].usage as { completion_tokens: number }).completion_tokens], ['text_completion', ev[0].id, [], 1]);
    // Logprobs without echo: no opening chunk, one per token and the finish chunk.
    const noEcho = sseEvents((await complete(app, { logprobs: 0, stream: true })).body);
    assert.deepEqual(noEcho.map((e) => (e.choices as { text: string }[])[0].text), ['A', 'B', '']);
  });
});

test('scored echo of a reply that ends at once: the echo chunk still comes, before the finish chunk', async () => {
  await withApp(routeRuntime({ replies: [''] }), async (app) => {
    const ev = sseEvents((await complete(app, { echo: true, logprobs: 0, stream: true })).body);
    assert.deepEqual(ev.map((e) => (e.choices as { text: string; finish_reason: string | null }[]).map((c) => [c.text, c.finish_reason])), [[['hi', null]], [['', 'stop']]]);
  });
});

test('best_of: the best n of best_of candidates by summed logprob (ties: the earlier), renumbered; usage counts them all', async () => {
  await withApp(routeRuntime({ replies: ['long one', 'ab', 'cd'] }), async (app) => {
    const r = (await complete(app, { best_of: 3, n: 1 })).json();
    // -1 per token: the shortest wins, and of two equal ones the earlier.
    assert.deepEqual(r.choices.map((c: { text: string; index: number; logprobs: unknown }) => [c.text, c.index, c.logprobs]), [['ab', 0, null]]);
    assert.equal(r.usage.completion_tokens, 8 + 2 + 2);
  });
  const c = (index: number, promptIndex: number, lps: (number | null)[]) => ({ index, promptIndex, picks: lps.map((logprob) => ({ token: 1, logprob })) }) as unknown as Choice;
  const picked = (cs: Choice[], n: number, bestOf: number) => best(cs, n, bestOf).map(({ c, index }) => [c.index, index]);
  // Two prompts, three candidates each: per prompt the best two, numbered prompt-major; a missing logprob counts 0.
  const cs = [c(0, 0, [-3]), c(1, 0, [-1, -1]), c(2, 0, [-0.5]), c(3, 1, [null, -4]), c(4, 1, [-5]), c(5, 1, [-2, -2])];
  assert.deepEqual(picked(cs, 2, 3), [[2, 0], [1, 1], [3, 2], [5, 3]]);
  // Equal scores keep the earlier candidate first.
  assert.deepEqual(picked([c(0, 0, [-1]), c(1, 0, [-1]), c(2, 0, [-1])], 2, 3), [[0, 0], [1, 1]]);
  // The prompts are taken in order even when their candidates are listed out of order.
  assert.deepEqual(picked([c(2, 1, [-1]), c(3, 1, [-2]), c(0, 0, [-2]), c(1, 0, [-1])], 1, 2), [[1, 0], [2, 1]]);
  // Ties go to the lower index however the candidates are listed.
  assert.deepEqual(picked([c(1, 0, [-1]), c(0, 0, [-1])], 1, 2), [[0, 0]]);
  assert.deepEqual(picked([c(2, 0, [-1]), c(1, 0, [-1]), c(0, 0, [-1])], 1, 3), [[0, 0]]);
  // best_of equal to n: every choice as it is.
  assert.deepEqual(picked([c(1, 0, [-9]), c(0, 0, [-1])], 2, 2), [[1, 1], [0, 0]]);
});

test('refusals: a prompt that cannot fit names which one; more prompts than slots; another model; not ready', async () => {
  await withApp(routeRuntime({ nSeq: 2, nCtx: 16 }), async (app) => {
    const err = async (body: Record<string, unknown>) => {
      const r = await complete(app, body);
      return [r.statusCode, r.json().error.param, r.json().error.code];
    };
    const long = 'x'.repeat(200);
    assert.deepEqual(await err({ prompt: long }), [400, 'prompt', 'context_length_exceeded']);
    assert.deepEqual(await err({ prompt: ['hi', long] }), [400, 'prompt[1]', 'context_length_exceeded']);
    assert.equal((await complete(app, { prompt: ['a', 'b'] })).statusCode, 200);
    assert.deepEqual(await err({ prompt: ['a', 'b', 'c'] }), [400, 'prompt', 'invalid_value']);
    assert.deepEqual(await err({ model: 'gpt-4o' }), [404, 'model', 'model_not_found']);
    assert.deepEqual(await err({ prompt: [1, 2, 3].concat(Array(20).fill(5)) }), [400, 'prompt', 'context_length_exceeded']);
    assert.equal((await complete(app, { model: 'scripted' })).statusCode, 200);
    app.relu.draining = true;
    assert.deepEqual(await err({}), [503, null, 'shutting_down']);
  });
});

test('a prompt that tokenises past the context is refused naming prompt; logprobs without echo keep the prompt cache', async () => {
  // The size check before tokenising lets it through (a byte token is written as 6 characters).
  await withApp(routeRuntime({ nCtx: 64 }), async (app) => {
    const r = await complete(app, { prompt: ['hi', 'x'.repeat(100)] });
    assert.deepEqual([r.statusCode, r.json().error.param, r.json().error.code], [400, 'prompt', 'context_length_exceeded']);
    assert.match(r.json().error.message, /the prompt \(prompt 1\) is 102 tokens/);
    // Only a scored prompt (echo + logprobs) must be run through the model again.
    const prompt = 'hi there, a prompt of some length';
    await complete(app, { prompt, logprobs: 0, max_tokens: 1 });
    const again = (await complete(app, { prompt, logprobs: 0, max_tokens: 1 })).json();
    assert.ok(again.usage.prompt_tokens_details.cached_tokens > 0, JSON.stringify(again.usage));
    await complete(app, { prompt, echo: true, logprobs: 0, max_tokens: 1 });
    const scored = (await complete(app, { prompt, echo: true, logprobs: 0, max_tokens: 1 })).json();
    assert.equal(scored.usage.prompt_tokens_details.cached_tokens, 0);
  });
});

test('streamed echo without logprobs comes at once, before the model has produced a token', async () => {
  const rt = routeRuntime({ replies: ['!'] });
  const app = await buildApp({ runtime: rt, defaultMetrics: false });
  let go!: () => void;
  rt.hold.p = new Promise((r) => (go = r));
  try {
    await app.modelReady;
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const res = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'hi', echo: true, stream: true }) });
    const reader = res.body!.getReader();
    // Every decode step is held: only the echo can have been sent.
    let timer: NodeJS.Timeout | undefined;
    const first = await Promise.race([reader.read(), new Promise<null>((r) => (timer = setTimeout(() => r(null), 2000)))]);
    clearTimeout(timer);
    assert.ok(first && !first.done, 'a chunk before any decode step');
    const text = new TextDecoder().decode(first.value);
    assert.equal(JSON.parse(text.split('\n\n')[0].slice('data: '.length)).choices[0].text, 'hi');
    rt.hold.p = null;
    go();
    while (!(await reader.read()).done);
  } finally {
    rt.hold.p = null;
    go();
    await app.close();
  }
});
