// Prompt scoring (echo + logprobs + max_tokens 0, what lm-evaluation-harness sends) and
// assistant prefill, through the official SDK against the tiny model.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, type TestServer } from './server.js';
import { chatPrompt } from '../../server/http/prompt.js';

let s: TestServer;
before(async () => {
  s = await startServer({ parallel: 2, ctxSize: 256 });
});
after(async () => {
  await s.close();
});

interface Lp {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

const tokenize = async (content: string): Promise<number[]> =>
  ((await (await fetch(`${s.url}/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content, add_special: true }) })).json()) as { tokens: number[] }).tokens;

test('echo + logprobs + max_tokens 0 scores the prompt: first token null, the rest with top-k holding the token', async () => {
  const prompt = 'The quick brown fox jumps over the lazy dog';
  const ids = await tokenize(prompt);
  const r = await s.client.completions.create({ model: 'tiny', prompt, max_tokens: 0, echo: true, logprobs: 3 });
  const c = r.choices[0];
  assert.equal(c.text, prompt);
  assert.equal(c.finish_reason, 'length');
  assert.equal(r.usage!.completion_tokens, 0);
  assert.equal(r.usage!.prompt_tokens, ids.length);
  const lp = c.logprobs as Lp;
  assert.equal(lp.tokens.length, ids.length);
  assert.equal(lp.token_logprobs[0], null);
  assert.equal(lp.top_logprobs[0], null);
  for (let i = 1; i < ids.length; i++) {
    const v = lp.token_logprobs[i]!;
    assert.ok(typeof v === 'number' && v <= 0, `token ${i}: ${v}`);
    const top = lp.top_logprobs[i]!;
    assert.equal(top[lp.tokens[i]], v);
    assert.ok(Object.keys(top).length >= 3 && Object.keys(top).length <= 4);
    // The top list holds the best tokens: none is below the listed token unless the token is an extra.
    const best = Math.max(...Object.values(top));
    assert.ok(best >= v);
  }
  // Offsets index the echoed text.
  lp.tokens.forEach((t, i) => {
    if (i === 0 || t.startsWith('<')) return;
    assert.ok(c.text.startsWith(t, lp.text_offset[i]) || (lp.text_offset[i] === 0 && c.text.startsWith(t.trimStart())), `token ${i}`);
  });
  // Streamed: the same numbers.
  const st = await s.client.completions.create({ model: 'tiny', prompt, max_tokens: 0, echo: true, logprobs: 3, stream: true });
  let text = '';
  const streamed: (number | null)[] = [];
  for await (const ch of st) {
    text += ch.choices[0]?.text ?? '';
    streamed.push(...((ch.choices[0]?.logprobs as Lp | null)?.token_logprobs ?? []));
  }
  assert.equal(text, prompt);
  assert.deepEqual(streamed, lp.token_logprobs);
});

test('a scored token has the logprob the model gives it when generating it', async () => {
  const prompt = 'Once upon a time';
  const gen = await s.client.completions.create({ model: 'tiny', prompt, max_tokens: 1, temperature: 0, logprobs: 1 });
  const next = gen.choices[0].logprobs as Lp;
  const ids = await tokenize(prompt);
  const nextId = (await (await fetch(`${s.url}/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content: prompt + gen.choices[0].text, add_special: true }) })).json()) as { tokens: number[] };
  // Only compare when the continuation tokenises as the prompt plus that one token.
  assert.ok(nextId.tokens.length === ids.length + 1, "the test needs a one-token continuation");
  if (nextId.tokens.length === ids.length + 1 && nextId.tokens.slice(0, ids.length).every((t, i) => t === ids[i])) {
    const scored = await s.client.completions.create({ model: 'tiny', prompt: nextId.tokens, max_tokens: 0, echo: true, logprobs: 1 });
    const lp = scored.choices[0].logprobs as Lp;
    assert.ok(Math.abs(lp.token_logprobs[ids.length]! - next.token_logprobs[0]!) < 1e-3, `${lp.token_logprobs[ids.length]} vs ${next.token_logprobs[0]}`);
  }
});

test('scoring works on token-id prompts and batches of prompts; echo + logprobs with generation scores the prompt too', async () => {
  const a = await tokenize('In the beginning');
  const b = await tokenize('And the earth was without form');
  const r = await s.client.completions.create({ model: 'tiny', prompt: [a, b], max_tokens: 0, echo: true, logprobs: 0 });
  assert.equal(r.choices.length, 2);
  const byIndex = [...r.choices].sort((x, y) => x.index - y.index);
  [a, b].forEach((ids, i) => {
    const lp = byIndex[i].logprobs as Lp;
    assert.equal(lp.tokens.length, ids.length);
    assert.equal(lp.token_logprobs[0], null);
    assert.ok(lp.token_logprobs.slice(1).every((v) => typeof v === 'number'));
  });
  const g = await s.client.completions.create({ model: 'tiny', prompt: 'In the beginning', max_tokens: 3, temperature: 0, echo: true, logprobs: 1 });
  const lp = g.choices[0].logprobs as Lp;
  assert.equal(lp.tokens.length, a.length + g.usage!.completion_tokens);
  assert.equal(lp.token_logprobs[0], null);
  assert.ok(lp.token_logprobs.slice(1).every((v) => typeof v === 'number'));
});

test('assistant prefill: a final assistant message is continued, not answered', async () => {
  const rt = s.app.relu.runtime!;
  const messages = [{ role: 'user' as const, content: 'Tell me a story' }, { role: 'assistant' as const, content: 'Once upon a' }];
  const rendered = rt.template.render(messages, { continueFinal: true });
  assert.ok(rendered.endsWith('<|assistant|>\nOnce upon a'), JSON.stringify(rendered));
  const ids = await chatPrompt(rt, messages, { continueFinal: true });
  const viaCompletion = await s.client.completions.create({ model: 'tiny', prompt: ids, max_tokens: 6, temperature: 0 });
  for (const extra of [{}, { continue_final_message: true, add_generation_prompt: false }]) {
    const r = await s.client.chat.completions.create({ model: 'tiny', messages, max_tokens: 6, temperature: 0, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    assert.equal(r.usage!.prompt_tokens, ids.length);
    assert.equal(r.choices[0].message.content, viaCompletion.choices[0].text);
  }
  // Asking for a new turn after it (add_generation_prompt: true) answers instead.
  const fresh = await s.client.chat.completions.create({ model: 'tiny', messages, max_tokens: 2, add_generation_prompt: true } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  assert.ok(fresh.usage!.prompt_tokens > ids.length);
  await assert.rejects(
    s.client.chat.completions.create({ model: 'tiny', messages: [messages[0]], continue_final_message: true } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'continue_final_message',
  );
});
