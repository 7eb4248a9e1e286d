// best_of on /v1/completions through the official SDK: best_of candidates are generated,
// the n with the highest cumulative logprob come back (ranked against the same candidates
// asked for as n = best_of, which share seeds), usage counts every candidate's tokens,
// and best_of > n is refused when streamed (as OpenAI does).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, type TestServer } from './server.js';

let s: TestServer;
before(async () => {
  s = await startServer({ parallel: 4, ctxSize: 256 });
});
after(async () => {
  await s.close();
});

const sum = (xs: (number | null)[]) => xs.reduce<number>((a, x) => a + (x ?? 0), 0);

test('best_of returns the n candidates with the highest cumulative logprob, usage counts all', async () => {
  let reordered = 0;
  for (const seed of [1, 2, 3, 4]) {
    const req = { model: 'tiny', prompt: 'And it came to pass', max_tokens: 8, temperature: 1.5, seed } as const;
    // The candidates themselves: choice i of n = 4 has the seed candidate i of best_of = 4 has.
    const all = await s.client.completions.create({ ...req, n: 4, logprobs: 0 });
    const scored = all.choices.map((c) => ({ text: c.text, score: sum(c.logprobs!.token_logprobs!), index: c.index }));
    const want = [...scored].sort((a, b) => b.score - a.score || a.index - b.index).slice(0, 2);
    if (want[0].index !== 0 || want[1].index !== 1) reordered++;

    const r = await s.client.completions.create({ ...req, n: 2, best_of: 4 });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
    assert.deepEqual(r.choices.map((c) => c.text), want.map((w) => w.text), `seed ${seed}`);
    assert.equal(r.choices[0].logprobs, null, 'no logprobs unless asked for');
    assert.equal(r.usage!.completion_tokens, all.usage!.completion_tokens, 'usage counts all 4 candidates');
    assert.equal(r.usage!.prompt_tokens, all.usage!.prompt_tokens);

    // Asked for, logprobs are the returned candidates' own.
    const withLp = await s.client.completions.create({ ...req, n: 1, best_of: 4, logprobs: 1 });
    assert.equal(withLp.choices.length, 1);
    assert.equal(withLp.choices[0].text, want[0].text);
    assert.ok(Math.abs(sum(withLp.choices[0].logprobs!.token_logprobs!) - want[0].score) < 1e-9);
  }
  assert.ok(reordered > 0, 'some seed ranks a later candidate first, so the ranking is exercised');
});

test('best_of with several prompts ranks each prompt\'s candidates apart', async () => {
  const prompt: string[] = ['In the beginning', 'It is a truth'];
  const req = { model: 'tiny', prompt, max_tokens: 6, temperature: 1.5, seed: 11 };
  const all = await s.client.completions.create({ ...req, n: 2, logprobs: 0 });
  const r = await s.client.completions.create({ ...req, n: 1, best_of: 2 });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
  for (const p of [0, 1]) {
    const [a, b] = [all.choices[2 * p], all.choices[2 * p + 1]];
    const best = sum(b.logprobs!.token_logprobs!) > sum(a.logprobs!.token_logprobs!) ? b : a;
    assert.equal(r.choices[p].text, best.text, `prompt ${p}`);
  }
});

test('best_of > n cannot be streamed; best_of < n is refused', async () => {
  for (const body of [
    { model: 'tiny', prompt: 'x', max_tokens: 2, best_of: 3, stream: true },
    { model: 'tiny', prompt: 'x', max_tokens: 2, n: 2, best_of: 1 },
  ]) {
    await assert.rejects(
      s.client.completions.create(body as OpenAI.CompletionCreateParamsNonStreaming),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'best_of',
    );
  }
  // best_of = n streams as usual.
  const st = await s.client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 2, n: 2, best_of: 2, stream: true });
  let chunks = 0;
  for await (const _ of st) chunks++;
  assert.ok(chunks > 0);
});
