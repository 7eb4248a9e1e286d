// Prompt (prefix) cache through the official SDK: a request sharing a prefix with an
// earlier one only prefills the rest (counted from the engine's steps), reports it in
// usage.prompt_tokens_details.cached_tokens and /metrics, picks the slot with the
// longest match, and gives the same greedy output as without the cache.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { noEosBias, startServer, type TestServer } from './server.js';

let s: TestServer;
before(async () => {
  s = await startServer({ parallel: 2, ctxSize: 512 });
});
after(async () => {
  await s.close();
});

const noEos = () => noEosBias(s);
const story = 'In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep. ';
const prefixA = story.repeat(3);
const prefixB = 'Now these are the generations of the sons of Noah, Shem, Ham, and Japheth: and unto them were sons born after the flood. '.repeat(3);

type Usage = OpenAI.CompletionUsage & { prompt_tokens_details?: { cached_tokens?: number } };

/** Runs one completion and counts the prompt tokens the engine actually decoded for it. */
async function run(prompt: string, extra: Record<string, unknown> = {}): Promise<{ text: string; usage: Usage; prefilled: number; logprobs: (number | null)[] }> {
  s.steps.length = 0;
  const r = await s.client.completions.create({ model: 'tiny', prompt, max_tokens: 8, temperature: 0, logprobs: 1, logit_bias: noEos(), ...extra } as OpenAI.CompletionCreateParamsNonStreaming);
  const prefilled = s.steps.reduce((a, x) => a + x.prefillTokens, 0);
  return { text: r.choices[0].text, usage: r.usage as Usage, prefilled, logprobs: r.choices[0].logprobs!.token_logprobs! };
}

test('a shared prefix is not prefilled again; cached_tokens says how much; same greedy output as without the cache', async () => {
  const first = await run(prefixA + 'Alpha');
  assert.equal(first.usage.prompt_tokens_details?.cached_tokens, 0);
  assert.equal(first.prefilled, first.usage.prompt_tokens);
  const second = await run(prefixA + 'And God said, Let there be light');
  const cached = second.usage.prompt_tokens_details!.cached_tokens!;
  assert.ok(cached >= first.usage.prompt_tokens - 3, `cached ${cached} of a ${first.usage.prompt_tokens}-token first prompt`);
  assert.equal(second.prefilled, second.usage.prompt_tokens - cached);
  const fresh = await run(prefixA + 'And God said, Let there be light', { cache_prompt: false });
  assert.equal(fresh.usage.prompt_tokens_details?.cached_tokens, 0);
  assert.equal(fresh.prefilled, fresh.usage.prompt_tokens);
  assert.equal(second.text, fresh.text);
  second.logprobs.forEach((v, i) => assert.ok(Math.abs(v! - fresh.logprobs[i]!) < 1e-4, `token ${i}: ${v} vs ${fresh.logprobs[i]}`));
  // The same prompt again: all but the last token come from the cache.
  const again = await run(prefixA + 'And God said, Let there be light');
  assert.equal(again.usage.prompt_tokens_details?.cached_tokens, again.usage.prompt_tokens - 1);
  assert.equal(again.text, fresh.text);
  const m = await (await fetch(`${s.url}/metrics`)).text();
  const total = Number(/^relu_serve_prompt_tokens_cached_total (\d+)$/m.exec(m)?.[1]);
  assert.ok(total >= cached + again.usage.prompt_tokens - 1, `metric ${total}`);
});

test('each request goes to the slot with the longest match, so two conversations keep their caches', async () => {
  await run(prefixA + 'one');
  await run(prefixB + 'two');
  // B first: the least recently used slot is A's, so only matching can keep A's cache.
  const b = await run(prefixB + 'four');
  const a = await run(prefixA + 'three');
  assert.ok(a.usage.prompt_tokens_details!.cached_tokens! > a.usage.prompt_tokens - 8, `A cached ${a.usage.prompt_tokens_details!.cached_tokens}`);
  assert.ok(b.usage.prompt_tokens_details!.cached_tokens! > b.usage.prompt_tokens - 8, `B cached ${b.usage.prompt_tokens_details!.cached_tokens}`);
});

test('chat reports cached tokens too; prompt scoring never reuses the cache (it needs every position)', async () => {
  const messages = [{ role: 'system' as const, content: prefixA }, { role: 'user' as const, content: 'Hello' }];
  await s.client.chat.completions.create({ model: 'tiny', messages, max_tokens: 2 });
  const r = await s.client.chat.completions.create({ model: 'tiny', messages: [messages[0], { role: 'user', content: 'Goodbye' }], max_tokens: 2 });
  assert.ok(r.usage!.prompt_tokens_details!.cached_tokens! > 50);
  await run(prefixA + 'scored');
  const scored = await run(prefixA + 'scored', { echo: true, max_tokens: 0 });
  assert.equal(scored.usage.prompt_tokens_details?.cached_tokens, 0);
  assert.equal(scored.logprobs.filter((v) => v === null).length, 1);
});
