import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChatRequest, parseCompletionRequest } from '../../server/http/validate.js';
import { ApiError } from '../../server/http/errors.js';

const limits = { maxN: 4, nVocab: 100, maxPrompts: 4 };

function refused(fn: () => unknown, param: string | null, re?: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ApiError, `expected ApiError, got ${err}`);
    assert.equal(err.status, 400);
    assert.equal(err.param, param);
    if (re) assert.match(err.message, re);
    return;
  }
  assert.fail('expected a refusal');
}

const chat = (extra: Record<string, unknown>) => parseChatRequest({ messages: [{ role: 'user', content: 'hi' }], ...extra }, limits);

test('chat defaults', () => {
  const r = chat({});
  assert.equal(r.n, 1);
  assert.equal(r.stream, false);
  assert.equal(r.maxTokens, undefined);
  assert.equal(r.sampling.temperature, 1);
  assert.equal(r.sampling.topP, 1);
  assert.deepEqual(r.stop, []);
});

test('content as text parts is joined; developer role maps to system', () => {
  const r = parseChatRequest({ messages: [{ role: 'developer', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }] }, limits);
  assert.deepEqual(r.messages, [{ role: 'system', content: 'ab' }]);
});

test('chat field errors name the field', () => {
  refused(() => parseChatRequest({}, limits), 'messages', /required/);
  refused(() => parseChatRequest({ messages: [] }, limits), 'messages');
  refused(() => parseChatRequest({ messages: [{ role: 'tool', content: 'x' }] }, limits), 'messages[0].tool_call_id');
  refused(() => parseChatRequest({ messages: [{ role: 'robot', content: 'x' }] }, limits), 'messages[0].role');
  refused(() => parseChatRequest({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }, limits), 'messages[0].content[0].type');
  refused(() => parseChatRequest({ messages: [{ role: 'user', content: 5 }] }, limits), 'messages[0].content');
  refused(() => chat({ temperature: 3 }), 'temperature', /at most 2/);
  refused(() => chat({ temperature: 'hot' }), 'temperature', /number/);
  refused(() => chat({ top_p: 0 }), 'top_p');
  refused(() => chat({ n: 5 }), 'n', /at most 4/);
  refused(() => chat({ n: 1.5 }), 'n', /integer/);
  refused(() => chat({ max_tokens: 0 }), 'max_tokens');
  refused(() => chat({ max_completion_tokens: -3 }), 'max_completion_tokens');
  refused(() => chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), 'stop', /at most 4/);
  refused(() => chat({ stop: [''] }), 'stop[0]');
  refused(() => chat({ stop: 7 }), 'stop');
  refused(() => chat({ top_logprobs: 3 }), 'top_logprobs', /requires 'logprobs'/);
  refused(() => chat({ logprobs: true, top_logprobs: 21 }), 'top_logprobs');
  refused(() => chat({ logit_bias: { abc: 1 } }), 'logit_bias.abc');
  refused(() => chat({ logit_bias: { 100: 1 } }), 'logit_bias.100');
  refused(() => chat({ logit_bias: { 5: 101 } }), 'logit_bias.5');
  refused(() => chat({ stream_options: { include_usage: true } }), 'stream_options', /only allowed when 'stream'/);
  refused(() => chat({ seed: 1.5 }), 'seed');
  refused(() => chat({ model: 3 }), 'model');
  refused(() => chat({ repetition_penalty: 0 }), 'repetition_penalty');
  refused(() => parseChatRequest([1, 2], limits), null, /JSON object/);
});

test('max_completion_tokens wins over max_tokens; stream options parse', () => {
  const r = chat({ max_tokens: 10, max_completion_tokens: 20, stream: true, stream_options: { include_usage: true }, stop: 'x', seed: 42, logit_bias: { '7': -100 } });
  assert.equal(r.maxTokens, 20);
  assert.equal(r.includeUsage, true);
  assert.deepEqual(r.stop, ['x']);
  assert.equal(r.sampling.seed, 42);
  assert.equal(r.sampling.logitBias.get(7), -100);
});

test('completion prompts: string, strings, token ids, arrays of token ids', () => {
  assert.deepEqual(parseCompletionRequest({ prompt: 'a' }, limits).prompts, [{ kind: 'text', text: 'a' }]);
  assert.equal(parseCompletionRequest({ prompt: ['a', 'b'] }, limits).prompts.length, 2);
  assert.deepEqual(parseCompletionRequest({ prompt: [1, 2, 3] }, limits).prompts, [{ kind: 'tokens', tokens: [1, 2, 3] }]);
  assert.deepEqual(parseCompletionRequest({ prompt: [[1], [2, 3]] }, limits).prompts[1], { kind: 'tokens', tokens: [2, 3] });
  const r = parseCompletionRequest({ prompt: 'x', echo: true, logprobs: 3 }, limits);
  assert.equal(r.echo, true);
  assert.equal(r.logprobs, 3);
  assert.equal(parseCompletionRequest({ prompt: 'x' }, limits).logprobs, null);
});

test('completion field errors name the field', () => {
  refused(() => parseCompletionRequest({}, limits), 'prompt', /required/);
  refused(() => parseCompletionRequest({ prompt: [] }, limits), 'prompt');
  refused(() => parseCompletionRequest({ prompt: [1, 200] }, limits), 'prompt[1]', /\[0, 100\)/);
  refused(() => parseCompletionRequest({ prompt: [[1], [-1]] }, limits), 'prompt[1][0]');
  refused(() => parseCompletionRequest({ prompt: ['a', 3, 'b'] }, limits), 'prompt[1]');
  refused(() => parseCompletionRequest({ prompt: ['a', 'b', 'c'], n: 2 }, limits), 'n', /6 sequences/);
  refused(() => parseCompletionRequest({ prompt: 'a', logprobs: 50 }, limits), 'logprobs');
  refused(() => parseCompletionRequest({ prompt: 'a', echo: 'yes' }, limits), 'echo');
});

// Inside messages too, every key is honoured or refused (never dropped): name goes to the
// template; a key a role does not take, or an unknown one, is a 400 naming it.
test('message keys: name is kept, others refused by role, null counts as absent', () => {
  const r = parseChatRequest({ messages: [{ role: 'user', content: 'hi', name: 'ann' }, { role: 'assistant', content: 'yo', name: null, refusal: null }] }, limits);
  assert.equal(r.messages[0].name, 'ann');
  assert.equal(r.messages[1].name, undefined);
  refused(() => parseChatRequest({ messages: [{ role: 'user', content: 'x', tool_call_id: 'c1' }] }, limits), 'messages[0].tool_call_id');
  refused(() => parseChatRequest({ messages: [{ role: 'user', content: 'x', tool_calls: [] }] }, limits), 'messages[0].tool_calls');
  refused(() => parseChatRequest({ messages: [{ role: 'tool', content: 'x', tool_call_id: 'c', name: 'f' }] }, limits), 'messages[0].name');
  refused(() => parseChatRequest({ messages: [{ role: 'system', content: 'x', weight: 2 }] }, limits), 'messages[0].weight');
  refused(() => parseChatRequest({ messages: [{ role: 'user', content: 'x', name: 7 }] }, limits), 'messages[0].name');
});
