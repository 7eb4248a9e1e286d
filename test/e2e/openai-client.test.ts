// The server as clients see it: a real relu-serve on loopback (real engine, tiny model)
// driven by the official `openai` npm package.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { noEosBias, startServer, waitFor, type TestServer } from './server.js';

let s: TestServer;
before(async () => {
  s = await startServer({ parallel: 4, ctxSize: 256 });
});
after(async () => {
  await s.close();
});

const noEos = () => noEosBias(s);
const user = (content: string) => [{ role: 'user' as const, content }];

test('chat, not streamed: shape and usage', async () => {
  const r = await s.client.chat.completions.create({ model: 'tiny', messages: user('Hello there'), max_tokens: 8, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.model, 'tiny');
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(c.finish_reason === 'stop' || c.finish_reason === 'length');
  assert.ok(r.usage);
  assert.ok(r.usage.prompt_tokens > 3);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 8);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 8);
});

test('chat, streamed: role chunk, content, finish chunk, usage chunk; same text as unstreamed (greedy)', async () => {
  const req = { model: 'tiny', messages: user('Tell me a story'), max_tokens: 12, temperature: 0 };
  const full = await s.client.chat.completions.create(req);
  const stream = await s.client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const ch of stream) chunks.push(ch);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(chunks[0].object, 'chat.completion.chunk');
  const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
  assert.equal(finish.length, 1);
  assert.equal(finish[0].choices[0].finish_reason, full.choices[0].finish_reason);
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  // The second request finds the first one's prompt in the prefix cache; only that differs.
  assert.deepEqual({ ...last.usage, prompt_tokens_details: null }, { ...full.usage, prompt_tokens_details: null });
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
  assert.equal(text, full.choices[0].message.content);
  // All chunks carry the same id.
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
});

test('completions: string and token prompts, echo, streamed and not', async () => {
  const r = await s.client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 6, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].index, 0);
  assert.ok(r.usage && r.usage.completion_tokens <= 6);
  const echo = await s.client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, echo: true });
  assert.equal(echo.choices[0].text, 'Once upon a time' + r.choices[0].text);
  const tokens = (await (await fetch(`${s.url}/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content: 'Once upon a time', add_special: true }) })).json()) as { tokens: number[] };
  const byIds = await s.client.completions.create({ model: 'tiny', prompt: tokens.tokens, max_tokens: 6, temperature: 0 });
  assert.equal(byIds.choices[0].text, r.choices[0].text);
  const stream = await s.client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, stream: true });
  let text = '';
  let reason: string | null = null;
  for await (const ch of stream) {
    text += ch.choices[0]?.text ?? '';
    reason = ch.choices[0]?.finish_reason ?? reason;
  }
  assert.equal(text, r.choices[0].text);
  assert.equal(reason, r.choices[0].finish_reason);
});

test('n=2 gives two choices; several prompts are numbered prompt-major', async () => {
  const r = await s.client.chat.completions.create({ model: 'tiny', messages: user('Hi'), max_tokens: 5, n: 2, seed: 5 });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
  const m = await s.client.completions.create({ model: 'tiny', prompt: ['a b', 'c d'], n: 2, max_tokens: 3 });
  assert.deepEqual(m.choices.map((c) => c.index).sort(), [0, 1, 2, 3]);
  const stream = await s.client.chat.completions.create({ model: 'tiny', messages: user('Hi'), max_tokens: 5, n: 2, stream: true });
  const ends = new Set<number>();
  for await (const ch of stream) for (const c of ch.choices) if (c.finish_reason) ends.add(c.index);
  assert.deepEqual([...ends].sort(), [0, 1]);
});

test('same seed, same request, same output; logprobs are consistent', async () => {
  const req = { model: 'tiny', prompt: 'The', max_tokens: 16, temperature: 1, seed: 1234 };
  const a = await s.client.completions.create(req);
  const b = await s.client.completions.create(req);
  assert.equal(a.choices[0].text, b.choices[0].text);
  const lp = await s.client.chat.completions.create({ model: 'tiny', messages: user('x'), max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = lp.choices[0].logprobs?.content ?? [];
  assert.equal(content.length, lp.usage?.completion_tokens);
  for (const t of content) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 3);
    // Greedy: the chosen token is the most likely one.
    assert.ok(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-4);
    for (let i = 1; i < 3; i++) assert.ok(t.top_logprobs[i].logprob <= t.top_logprobs[i - 1].logprob);
    assert.deepEqual(Buffer.from(t.bytes ?? []).toString('utf8'), t.token);
  }
  // Streamed: every token's logprobs arrive once, in order.
  const st = await s.client.chat.completions.create({ model: 'tiny', messages: user('x'), max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3, stream: true });
  const streamed: number[] = [];
  for await (const ch of st) for (const t of ch.choices[0]?.logprobs?.content ?? []) streamed.push(t.logprob);
  // Equal up to rounding: the second request's prompt comes from the prefix cache, so its
  // last prompt token is decoded in a smaller batch (another FFN path, same maths).
  assert.equal(streamed.length, content.length);
  streamed.forEach((v, i) => assert.ok(Math.abs(v - content[i].logprob) < 1e-5, `token ${i}: ${v} vs ${content[i].logprob}`));
  const clp = await s.client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 4, temperature: 0, logprobs: 2 });
  const l = clp.choices[0].logprobs!;
  assert.equal(l.tokens!.length, clp.usage!.completion_tokens);
  assert.equal(l.top_logprobs![0] && Object.keys(l.top_logprobs![0]).length <= 2, true);
});

test('stop strings are never emitted, also when split across tokens in a stream', async () => {
  const base = await s.client.completions.create({ model: 'tiny', prompt: 'In the beginning', max_tokens: 40, temperature: 0, logit_bias: noEos() });
  const text = base.choices[0].text;
  assert.ok(text.length >= 8, `need some output to cut, got ${JSON.stringify(text)}`);
  // A stop string from the middle of the output (likely spanning a token boundary).
  const at = Math.floor(text.length / 2);
  const stop = text.slice(at, at + 3);
  const expected = text.slice(0, text.indexOf(stop));
  const cut = await s.client.completions.create({ model: 'tiny', prompt: 'In the beginning', max_tokens: 40, temperature: 0, stop: [stop], logit_bias: noEos() });
  assert.equal(cut.choices[0].text, expected);
  assert.equal(cut.choices[0].finish_reason, 'stop');
  const stream = await s.client.completions.create({ model: 'tiny', prompt: 'In the beginning', max_tokens: 40, temperature: 0, stop: ['zzzz', stop], stream: true, logit_bias: noEos() });
  const pieces: string[] = [];
  for await (const ch of stream) pieces.push(ch.choices[0]?.text ?? '');
  assert.equal(pieces.join(''), expected);
  assert.ok(!pieces.join('').includes(stop));
});

test('max_tokens beyond the room left is cut with finish_reason length; too long a prompt is a 400 naming both sizes', async () => {
  const long = Array.from({ length: 250 }, (_, i) => 10 + (i % 50));
  const r = await s.client.completions.create({ model: 'tiny', prompt: long, max_tokens: 100, temperature: 0, logit_bias: noEos() });
  // 256 positions - 250 prompt tokens = 6 left (unless EOS came first).
    assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage!.completion_tokens, 6);
  await assert.rejects(
    s.client.completions.create({ model: 'tiny', prompt: Array.from({ length: 300 }, () => 20), max_tokens: 4 }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && /256/.test(e.message) && /300/.test(e.message) && (e.error as { code?: string }).code === 'context_length_exceeded',
  );
});

test('errors come back as the SDK error classes with OpenAI fields', async () => {
  await assert.rejects(s.client.chat.completions.create({ model: 'gpt-9', messages: user('x') }), (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  await assert.rejects(s.client.chat.completions.create({ model: 'tiny', messages: user('x'), temperature: 5 }), (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'temperature');
  await assert.rejects(s.client.models.retrieve('nope'), (e: unknown) => e instanceof OpenAI.NotFoundError);
});

test('models, health, tokenize/detokenize, metrics', async () => {
  const list = await s.client.models.list();
  assert.equal(list.data.length, 1);
  assert.equal(list.data[0].id, 'tiny');
  assert.equal((list.data[0] as unknown as { context_length: number }).context_length, 256);
  const one = await s.client.models.retrieve('tiny');
  assert.equal(one.id, 'tiny');
  const h = await fetch(`${s.url}/health`);
  assert.equal(h.status, 200);
  const post = (p: string, b: unknown) => fetch(`${s.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) }).then((r) => r.json());
  const t = (await post('/tokenize', { content: 'hello world' })) as { tokens: number[] };
  assert.ok(t.tokens.length > 0);
  const withBos = (await post('/tokenize', { content: 'hello world', add_special: true })) as { tokens: number[] };
  assert.equal(withBos.tokens.length, t.tokens.length + 1);
  const pieces = (await post('/tokenize', { content: 'hello world', with_pieces: true })) as { tokens: { id: number; piece: string | number[] }[] };
  assert.deepEqual(pieces.tokens.map((p) => p.id), t.tokens);
  assert.equal(pieces.tokens.map((p) => p.piece).join('').trim(), 'hello world');
  const d = (await post('/detokenize', { tokens: t.tokens })) as { content: string };
  assert.equal(d.content, 'hello world');
  const m = await (await fetch(`${s.url}/metrics`)).text();
  for (const name of ['relu_serve_requests_total', 'relu_serve_prompt_tokens_total', 'relu_serve_generated_tokens_total', 'relu_serve_time_to_first_token_seconds_bucket', 'relu_serve_inter_token_latency_seconds_bucket', 'relu_serve_queue_time_seconds_bucket', 'relu_serve_request_duration_seconds_bucket', 'relu_serve_requests_running', 'relu_serve_requests_waiting', 'relu_serve_kv_cache_usage_ratio']) {
    assert.ok(m.includes(name), `metrics lack ${name}`);
  }
  assert.match(m, /relu_serve_requests_total\{route="\/v1\/chat\/completions",method="POST",status="200"\} \d+/);
});

test('concurrent requests share decode steps; a late request joins while others run', async () => {
  s.steps.length = 0;
  const go = (max: number) => s.client.completions.create({ model: 'tiny', prompt: 'Several at once', max_tokens: max, temperature: 0, logit_bias: noEos() });
  // Long enough (steps of a tiny model take well under a millisecond) that the late one,
  // sent after a 3-sequence step is seen, still finds them running on a busy machine.
  const first = [go(200), go(200), go(200)];
  await waitFor(() => s.steps.some((x) => x.sequences === 3), 10_000, 'a step with 3 sequences');
  const late = await go(3);
  const firsts = await Promise.all(first);
  assert.ok(late.usage!.completion_tokens >= 1);
  assert.ok(s.steps.some((x) => x.sequences === 4), 'the late request was decoded together with the others');
  for (const r of firsts) assert.ok(r.usage!.completion_tokens >= 1);
});

test('aborting a stream frees its slot within a step', async () => {
  const ac = new AbortController();
  const stream = await s.client.chat.completions.create({ model: 'tiny', messages: user('long'), max_tokens: 200, temperature: 0, stream: true, logit_bias: noEos() }, { signal: ac.signal });
  let got = 0;
  let finished = false;
  try {
    for await (const ch of stream) {
      if (ch.choices[0]?.finish_reason) finished = true;
      if (++got === 3) ac.abort();
    }
  } catch {
    // The SDK may end the iteration quietly or throw an abort error; both are fine.
  }
  assert.equal(finished, false, 'the stream was cut before its end');
  await waitFor(() => s.app.relu.loop!.stats().slotsBusy === 0, 2000, 'slot release');
  // Non-streamed request aborted by the client too.
  const ac2 = new AbortController();
  const p = s.client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 200, temperature: 0, logit_bias: noEos() }, { signal: ac2.signal });
  await waitFor(() => s.app.relu.loop!.stats().slotsBusy === 1, 2000, 'admission');
  ac2.abort();
  await assert.rejects(p);
  await waitFor(() => s.app.relu.loop!.stats().slotsBusy === 0, 2000, 'slot release after non-stream abort');
  const m = await (await fetch(`${s.url}/metrics`)).text();
  assert.match(m, /relu_serve_client_disconnects_total [1-9]/);
});
