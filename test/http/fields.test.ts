// Every request field is honoured or refused, never dropped: walks the field tables of
// server/http/fields.ts against what the parsers actually read.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChatRequest, parseCompletionRequest } from '../../server/http/validate.js';
import { CHAT_FIELDS, CHAT_REFUSED, COMPLETION_FIELDS, COMPLETION_REFUSED } from '../../server/http/fields.js';
import { ApiError } from '../../server/http/errors.js';

const limits = { maxN: 4, nVocab: 100, maxPrompts: 4 };
type Parse = (body: Record<string, unknown>) => unknown;
const endpoints: { name: string; parse: Parse; base: Record<string, unknown>; fields: readonly string[]; refused: typeof CHAT_REFUSED }[] = [
  { name: 'chat', parse: (b) => parseChatRequest(b, limits), base: { messages: [{ role: 'user', content: 'hi' }] }, fields: CHAT_FIELDS, refused: CHAT_REFUSED },
  { name: 'completions', parse: (b) => parseCompletionRequest(b, limits), base: { prompt: 'hi' }, fields: COMPLETION_FIELDS, refused: COMPLETION_REFUSED },
];

function refusal(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ApiError, `expected ApiError, got ${err}`);
    assert.equal(err.status, 400);
    return err;
  }
  assert.fail('expected a 400');
}

for (const ep of endpoints) {
  test(`${ep.name}: the parser reads exactly the fields the table lists`, () => {
    const read = new Set<string>();
    const body = new Proxy({ ...ep.base }, {
      get(target, key, recv) {
        if (typeof key === 'string') read.add(key);
        return Reflect.get(target, key, recv);
      },
    });
    ep.parse(body);
    assert.deepEqual([...read].sort(), [...ep.fields].sort());
  });

  test(`${ep.name}: a wrong value of every honoured field is a 400 naming it`, () => {
    for (const f of ep.fields) {
      if (f in ep.base && f !== 'messages' && f !== 'prompt') continue;
      const e = refusal(() => ep.parse({ ...ep.base, [f]: { bad: [] } }));
      assert.ok(e.param === f || e.param?.startsWith(`${f}.`) || e.param?.startsWith(`${f}[`), `${f}: param ${e.param}`);
    }
  });

  test(`${ep.name}: refused features and unknown fields are a 400 naming them`, () => {
    for (const r of ep.refused) {
      const e = refusal(() => ep.parse({ ...ep.base, [r.field]: { x: 1 } }));
      assert.equal(e.param, r.field);
      assert.equal(e.code, 'unsupported_parameter');
      assert.ok(e.message.includes(r.feature), e.message);
    }
    // OpenAI fields this server does not implement, and plain typos.
    for (const f of ['store', 'metadata', 'service_tier', 'prediction', 'modalities', 'audio', 'reasoning_effort', 'web_search_options', 'temprature', 'max_token']) {
      const e = refusal(() => ep.parse({ ...ep.base, [f]: 1 }));
      assert.equal(e.param, f);
      assert.equal(e.code, 'unsupported_parameter');
    }
    // null is "the default", not a request for anything.
    ep.parse({ ...ep.base, store: null });
    // Structured output: text (the default), json_object, json_schema; schema keywords the grammar cannot enforce are refused by name.
    ep.parse({ ...ep.base, response_format: { type: 'text' } });
    ep.parse({ ...ep.base, response_format: { type: 'json_object' } });
    ep.parse({ ...ep.base, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'string' } } } } } });
    const e = refusal(() => ep.parse({ ...ep.base, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'string', pattern: '^a' } } } } } }));
    assert.equal(e.param, 'response_format.json_schema.schema.properties.a.pattern');
    assert.match(e.message, /'pattern'/);
  });
}

test('repeat_penalty is repetition_penalty; both must agree', () => {
  assert.equal(parseCompletionRequest({ prompt: 'x', repeat_penalty: 1.3 }, limits).sampling.repetitionPenalty, 1.3);
  assert.equal(parseCompletionRequest({ prompt: 'x', repeat_penalty: 1.3, repetition_penalty: 1.3 }, limits).sampling.repetitionPenalty, 1.3);
  assert.equal(refusal(() => parseCompletionRequest({ prompt: 'x', repeat_penalty: 1.3, repetition_penalty: 1.1 }, limits)).param, 'repeat_penalty');
});

test('completions: best_of at least n and not streamed above it, suffix only empty, logprobs only an integer, max_tokens 0 allowed', () => {
  assert.equal(parseCompletionRequest({ prompt: 'x', n: 2, best_of: 2 }, limits).n, 2);
  assert.equal(parseCompletionRequest({ prompt: 'x', best_of: 3 }, limits).bestOf, 3);
  assert.equal(parseCompletionRequest({ prompt: 'x', n: 2 }, limits).bestOf, 2);
  assert.equal(parseCompletionRequest({ prompt: 'x', n: 2, best_of: 2, stream: true }, limits).bestOf, 2);
  assert.equal(refusal(() => parseCompletionRequest({ prompt: 'x', n: 2, best_of: 1 }, limits)).param, 'best_of');
  assert.equal(refusal(() => parseCompletionRequest({ prompt: 'x', best_of: 3, stream: true }, limits)).param, 'best_of');
  assert.equal(refusal(() => parseCompletionRequest({ prompt: ['x', 'y'], best_of: limits.maxN }, limits)).param, 'best_of');
  parseCompletionRequest({ prompt: 'x', suffix: '' }, limits);
  assert.equal(refusal(() => parseCompletionRequest({ prompt: 'x', suffix: 'end' }, limits)).param, 'suffix');
  for (const lp of [true, false]) assert.equal(refusal(() => parseCompletionRequest({ prompt: 'x', logprobs: lp }, limits)).param, 'logprobs');
  assert.equal(parseCompletionRequest({ prompt: 'x', logprobs: 0 }, limits).logprobs, 0);
  assert.equal(parseCompletionRequest({ prompt: 'x', max_tokens: 0 }, limits).maxTokens, 0);
  assert.equal(refusal(() => parseChatRequest({ messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }, limits)).param, 'max_tokens');
});

test('cache_prompt defaults to true and can be turned off', () => {
  assert.equal(parseCompletionRequest({ prompt: 'x' }, limits).cachePrompt, true);
  assert.equal(parseCompletionRequest({ prompt: 'x', cache_prompt: false }, limits).cachePrompt, false);
});

test('chat: the deprecated functions / function_call fields are refused by name, unknown fields with a message saying so', () => {
  const fn = { name: 'f', parameters: { type: 'object' } };
  for (const [field, value, feature] of [['functions', [fn], 'the deprecated functions field'], ['function_call', 'auto', 'the deprecated function_call field']] as const) {
    const e = refusal(() => parseChatRequest({ messages: [{ role: 'user', content: 'x' }], [field]: value }, limits));
    assert.deepEqual([e.param, e.code, e.message], [field, 'unsupported_parameter', `'${field}' is not supported: this server does not implement function calling (${feature}).`]);
  }
  const u = refusal(() => parseCompletionRequest({ prompt: 'x', temprature: 0.5 }, limits));
  assert.equal(u.message, "Unknown or unsupported parameter 'temprature'; this server does not read it.");
});
