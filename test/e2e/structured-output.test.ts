// Structured output through the official SDK on the tiny (random) model: whatever it
// would say, the reply follows the schema / grammar.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, type TestServer } from './server.js';

let s: TestServer;
before(async () => {
  s = await startServer({ parallel: 2, ctxSize: 512 });
});
after(async () => {
  await s.close();
});

const schema = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 8 },
    age: { type: 'integer' },
    color: { enum: ['red', 'green', 'blue'] },
    tags: { type: 'array', items: { type: 'string', maxLength: 5 }, maxItems: 2 },
    address: { type: 'object', properties: { city: { type: 'string', maxLength: 6 }, zip: { type: 'number' } }, required: ['city'] },
  },
  required: ['name', 'age', 'color', 'address'],
  additionalProperties: false,
};

test('chat json_schema: every reply parses and has the schema\'s shape, streamed or not', async () => {
  for (const seed of [1, 2, 3]) {
    const r = await s.client.chat.completions.create({
      model: 'tiny', messages: [{ role: 'user', content: 'Describe a person' }], max_tokens: 300, temperature: 1, seed,
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } },
    });
    const c = r.choices[0];
    assert.equal(c.finish_reason, 'stop', c.message.content ?? '');
    const v = JSON.parse(c.message.content!) as Record<string, unknown>;
    assert.equal(typeof v.name, 'string');
    assert.ok(Number.isInteger(v.age));
    assert.ok(['red', 'green', 'blue'].includes(v.color as string));
    assert.equal(typeof (v.address as { city: unknown }).city, 'string');
    for (const k of Object.keys(v)) assert.ok(k in schema.properties, k);
  }
  const st = await s.client.chat.completions.create({
    model: 'tiny', messages: [{ role: 'user', content: 'Describe a person' }], max_tokens: 300, temperature: 1, seed: 4, stream: true,
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema } },
  });
  let text = '';
  for await (const ch of st) text += ch.choices[0]?.delta.content ?? '';
  assert.ok(typeof (JSON.parse(text) as { name: unknown }).name === 'string', text);
});

test('completions: GBNF grammar and llama.cpp json_schema; a bad grammar or schema is a 400 naming it', async () => {
  for (const seed of [1, 2, 3, 4]) {
    const r = await s.client.completions.create({ model: 'tiny', prompt: 'Answer:', max_tokens: 10, temperature: 1, seed, grammar: 'root ::= " " ("yes" | "no" | "maybe")' } as OpenAI.CompletionCreateParamsNonStreaming);
    assert.ok([' yes', ' no', ' maybe'].includes(r.choices[0].text), r.choices[0].text);
  }
  const j = await s.client.completions.create({ model: 'tiny', prompt: 'JSON:', max_tokens: 100, temperature: 0, json_schema: { type: 'array', items: { type: 'boolean' }, minItems: 1, maxItems: 3 } } as OpenAI.CompletionCreateParamsNonStreaming);
  const arr = JSON.parse(j.choices[0].text) as unknown[];
  assert.ok(arr.length >= 1 && arr.length <= 3 && arr.every((x) => typeof x === 'boolean'), j.choices[0].text);
  await assert.rejects(
    s.client.completions.create({ model: 'tiny', prompt: 'x', grammar: 'root ::= (' } as OpenAI.CompletionCreateParamsNonStreaming),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'grammar',
  );
  await assert.rejects(
    s.client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', format: 'email' } } } }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'response_format.json_schema.schema.format' && /format/.test(e.message),
  );
});

test('json_object: the reply is a JSON object when it ends', async () => {
  const r = await s.client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'JSON please' }], max_tokens: 200, temperature: 0, response_format: { type: 'json_object' } });
  const text = r.choices[0].message.content!;
  if (r.choices[0].finish_reason === 'stop') assert.equal(typeof JSON.parse(text), 'object');
  else assert.ok(text.trimStart().startsWith('{'), text);
});
