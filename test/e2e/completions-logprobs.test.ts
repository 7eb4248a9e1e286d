// Legacy completions logprobs through the official SDK: offsets index the returned text
// (echo included, streamed or not), top_logprobs always hold the listed token, a stop
// string cuts the token list as it cuts the text.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { noEosBias, startServer, type TestServer } from './server.js';

let s: TestServer;
before(async () => {
  s = await startServer({ parallel: 2, ctxSize: 256 });
});
after(async () => {
  await s.close();
});

const noEos = () => noEosBias(s);

interface Lp {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

/** Each token's text sits at its offset (the first one may have lost its leading space, as detokenising drops it). */
function assertOffsetsIndexText(text: string, lp: Lp): void {
  let prev = 0;
  lp.tokens.forEach((t, i) => {
    const at = lp.text_offset[i];
    assert.ok(at >= prev && at <= text.length, `offset ${at} of token ${i} out of order or range`);
    prev = at;
    if (t.length === 0 || t.startsWith('<')) return;
    const ok = text.startsWith(t, at) || (at === 0 && t.startsWith(' ') && text.startsWith(t.slice(1), 0));
    assert.ok(ok, `token ${i} ${JSON.stringify(t)} is not at offset ${at} of ${JSON.stringify(text)}`);
  });
}

async function streamed(req: OpenAI.CompletionCreateParamsNonStreaming): Promise<{ text: string; lp: Lp }> {
  const st = await s.client.completions.create({ ...req, stream: true });
  const lp: Lp = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let text = '';
  for await (const ch of st) {
    const c = ch.choices[0];
    if (!c) continue;
    text += c.text;
    const l = c.logprobs as Lp | null;
    if (!l) continue;
    lp.tokens.push(...l.tokens);
    lp.token_logprobs.push(...l.token_logprobs);
    lp.top_logprobs.push(...l.top_logprobs);
    lp.text_offset.push(...l.text_offset);
  }
  return { text, lp };
}

test('echo: text_offset indexes the returned text, streamed and not alike', async () => {
  const req = { model: 'tiny', prompt: 'Once upon a time there was', max_tokens: 8, temperature: 0, echo: true, logprobs: 1, logit_bias: noEos() };
  const r = await s.client.completions.create(req);
  const c = r.choices[0];
  const lp = c.logprobs as Lp;
  assert.ok(c.text.startsWith('Once upon a time there was'));
  assertOffsetsIndexText(c.text, lp);
  // " upon" starts at the space after "Once", not one character later.
  const upon = lp.tokens.indexOf(' upon');
  if (upon >= 0) assert.equal(lp.text_offset[upon], 4);
  const st = await streamed(req);
  assert.equal(st.text, c.text);
  assert.deepEqual(st.lp.text_offset, lp.text_offset);
  assert.deepEqual(st.lp.tokens, lp.tokens);
  // Without echo the offsets start at the completion.
  const plain = await s.client.completions.create({ ...req, echo: false });
  assertOffsetsIndexText(plain.choices[0].text, plain.choices[0].logprobs as Lp);
  assert.equal((plain.choices[0].logprobs as Lp).text_offset[0], 0);
});

test('top_logprobs always hold the sampled token; logprobs 0 lists just it', async () => {
  const r = await s.client.completions.create({ model: 'tiny', prompt: 'The', max_tokens: 16, temperature: 1.5, seed: 7, logprobs: 1, logit_bias: noEos() });
  const lp = r.choices[0].logprobs as Lp;
  assert.equal(lp.tokens.length, r.usage!.completion_tokens);
  lp.tokens.forEach((t, i) => {
    const top = lp.top_logprobs[i]!;
    assert.ok(t in top, `token ${JSON.stringify(t)} missing from ${JSON.stringify(top)}`);
    assert.equal(top[t], lp.token_logprobs[i]);
    assert.ok(Object.keys(top).length <= 2);
  });
  const zero = await s.client.completions.create({ model: 'tiny', prompt: 'The', max_tokens: 4, temperature: 0, logprobs: 0 });
  const z = zero.choices[0].logprobs as Lp;
  z.tokens.forEach((t, i) => assert.deepEqual(Object.keys(z.top_logprobs[i]!), [t]));
});

test('a boolean logprobs on completions is a 400', async () => {
  await assert.rejects(
    s.client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 2, logprobs: true as unknown as number }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'logprobs',
  );
});

test('a stop string cuts the logprob tokens where it cuts the text', async () => {
  const req = { model: 'tiny', prompt: 'In the beginning', max_tokens: 40, temperature: 0, logprobs: 0, logit_bias: noEos() };
  const base = await s.client.completions.create(req);
  const text = base.choices[0].text;
  const blp = base.choices[0].logprobs as Lp;
  assert.ok(text.length >= 12, `need output to cut, got ${JSON.stringify(text)}`);
  // A stop string spanning a token boundary: the token it ends in comes after the cut,
  // yet it is the token that completes the match.
  const k = blp.tokens.findIndex((t, i) => i >= blp.tokens.length / 2 && t.length >= 3 && blp.tokens[i - 1].length >= 2);
  assert.ok(k > 0);
  const stop = text.slice(blp.text_offset[k] - 1, blp.text_offset[k] + 2);
  const kept = text.indexOf(stop);
  const expected = blp.tokens.filter((_, i) => blp.text_offset[i] < kept);
  for (const stream of [false, true]) {
    const r = stream ? await streamed({ ...req, stop: [stop] }) : await s.client.completions.create({ ...req, stop: [stop] }).then((x) => ({ text: x.choices[0].text, lp: x.choices[0].logprobs as Lp }));
    assert.equal(r.text, text.slice(0, kept));
    assert.deepEqual(r.lp.tokens, expected, `stream=${stream}`);
    for (const o of r.lp.text_offset) assert.ok(o < r.text.length);
  }
});
