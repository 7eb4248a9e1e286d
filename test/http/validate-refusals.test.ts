// Every refusal validate.ts makes, with its exact message, param and code (the client
// reads all three), each numeric field at and just past its bounds, and the defaults and
// pass-through of every accepted field. validate.test.ts checks the params; this file
// pins down the rest, so a bound moved by one or a message emptied fails here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChatRequest, parseCompletionRequest } from '../../server/http/validate.js';
import { ApiError } from '../../server/http/errors.js';

const limits = { maxN: 4, nVocab: 100, maxPrompts: 3 };
const USER = [{ role: 'user', content: 'hi' }];
const chat = (extra: Record<string, unknown>) => parseChatRequest({ messages: USER, ...extra }, limits);
const comp = (extra: Record<string, unknown>) => parseCompletionRequest({ prompt: 'x', ...extra }, limits);

function refusal(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ApiError, `expected ApiError, got ${err}`);
    return err;
  }
  assert.fail('expected a refusal');
}

/** [what, call, param, code, message] */
const CASES: [string, () => unknown, string | null, string, string][] = [
  ['body not an object', () => parseChatRequest([1], limits), null, 'invalid_json', 'The request body must be a JSON object, got an array.'],
  ['body null', () => parseCompletionRequest(null, limits), null, 'invalid_json', 'The request body must be a JSON object, got null.'],
  ['body string', () => parseChatRequest('x', limits), null, 'invalid_json', 'The request body must be a JSON object, got a string.'],
  ['messages missing', () => parseChatRequest({}, limits), 'messages', 'missing_required_parameter', "'messages' is required."],
  ['messages object', () => parseChatRequest({ messages: {} }, limits), 'messages', 'invalid_type', "'messages' must be an array, got a object."],
  ['messages empty', () => parseChatRequest({ messages: [] }, limits), 'messages', 'invalid_value', "'messages' must hold at least one message."],
  ['message not object', () => parseChatRequest({ messages: ['x'] }, limits), 'messages[0]', 'invalid_type', "'messages[0]' must be an object, got a string."],
  ['message array', () => parseChatRequest({ messages: [[]] }, limits), 'messages[0]', 'invalid_type', "'messages[0]' must be an object, got an array."],
  ['role unknown', () => parseChatRequest({ messages: [{ role: 'bot', content: 'x' }] }, limits), 'messages[0].role', 'invalid_value', "'messages[0].role' must be one of 'system', 'developer', 'user', 'assistant', 'tool', got \"bot\"."],
  ['key on wrong role', () => parseChatRequest({ messages: [{ role: 'user', content: 'x', tool_calls: [] }] }, limits), 'messages[0].tool_calls', 'unsupported_parameter', "'messages[0].tool_calls' is not supported on a 'user' message (supported: role, content, name)."],
  ['name on tool', () => parseChatRequest({ messages: [{ role: 'tool', content: 'x', tool_call_id: 'a', name: 'n' }] }, limits), 'messages[0].name', 'unsupported_parameter', "'messages[0].name' is not supported on a 'tool' message (supported: role, content, tool_call_id)."],
  ['name not string', () => parseChatRequest({ messages: [{ role: 'user', content: 'x', name: 3 }] }, limits), 'messages[0].name', 'invalid_type', "'messages[0].name' must be a string, got a number."],
  ['content missing', () => parseChatRequest({ messages: [{ role: 'user' }] }, limits), 'messages[0].content', 'missing_required_parameter', "'messages[0].content' is required."],
  ['content number', () => parseChatRequest({ messages: [{ role: 'user', content: 1 }] }, limits), 'messages[0].content', 'invalid_type', "'messages[0].content' must be a string or an array of text parts, got a number."],
  ['part not object', () => parseChatRequest({ messages: [{ role: 'user', content: ['a'] }] }, limits), 'messages[0].content[0]', 'invalid_type', "'messages[0].content[0]' must be an object, got a string."],
  ['part image', () => parseChatRequest({ messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url' }] }] }, limits), 'messages[0].content[1].type', 'invalid_value', "'messages[0].content[1].type' must be 'text' (this model reads text only), got \"image_url\"."],
  ['part text missing', () => parseChatRequest({ messages: [{ role: 'user', content: [{ type: 'text' }] }] }, limits), 'messages[0].content[0].text', 'invalid_type', "'messages[0].content[0].text' must be a string, got a undefined."],
  ['tool without id', () => parseChatRequest({ messages: [{ role: 'tool', content: 'x' }] }, limits), 'messages[0].tool_call_id', 'missing_required_parameter', "'messages[0].tool_call_id' is required for a tool message."],
  ['tool_calls object', () => parseChatRequest({ messages: [{ role: 'assistant', content: 'x', tool_calls: {} }] }, limits), 'messages[0].tool_calls', 'invalid_type', "'messages[0].tool_calls' must be an array."],
  ['tool call shape', () => parseChatRequest({ messages: [{ role: 'assistant', tool_calls: [{ id: 'a' }] }] }, limits), 'messages[0].tool_calls[0]', 'invalid_type', "'messages[0].tool_calls[0]' must be {\"id\", \"type\": \"function\", \"function\": {\"name\", \"arguments\"}}."],
  ['tool call not object', () => parseChatRequest({ messages: [{ role: 'assistant', tool_calls: ['f'] }] }, limits), 'messages[0].tool_calls[0]', 'invalid_type', "'messages[0].tool_calls[0]' must be {\"id\", \"type\": \"function\", \"function\": {\"name\", \"arguments\"}}."],
  ['tool call name', () => parseChatRequest({ messages: [{ role: 'assistant', tool_calls: [{ function: { arguments: '{}' } }] }] }, limits), 'messages[0].tool_calls[0].function.name', 'invalid_type', "'messages[0].tool_calls[0].function.name' must be a string."],
  ['tool call args', () => parseChatRequest({ messages: [{ role: 'assistant', tool_calls: [{ function: { name: 'f', arguments: {} } }] }] }, limits), 'messages[0].tool_calls[0].function.arguments', 'invalid_type', "'messages[0].tool_calls[0].function.arguments' must be a JSON string."],
  ['model number', () => chat({ model: 1 }), 'model', 'invalid_type', "'model' must be a string, got a number."],
  ['max_tokens 0 on chat', () => chat({ max_tokens: 0 }), 'max_tokens', 'invalid_value', "'max_tokens' must be at least 1 and at most 9007199254740991, got 0."],
  ['max_tokens fraction', () => chat({ max_completion_tokens: 2.5 }), 'max_completion_tokens', 'invalid_value', "'max_completion_tokens' must be an integer, got 2.5."],
  ['max_tokens -1 on completions', () => comp({ max_tokens: -1 }), 'max_tokens', 'invalid_value', "'max_tokens' must be at least 0 and at most 9007199254740991, got -1."],
  ['stream string', () => chat({ stream: 'yes' }), 'stream', 'invalid_type', "'stream' must be a boolean, got a string."],
  ['stream_options array', () => chat({ stream: true, stream_options: [] }), 'stream_options', 'invalid_type', "'stream_options' must be an object, got an array."],
  ['stream_options without stream', () => chat({ stream_options: {} }), 'stream_options', 'invalid_value', "'stream_options' is only allowed when 'stream' is true."],
  ['include_usage string', () => chat({ stream: true, stream_options: { include_usage: 'y' } }), 'stream_options.include_usage', 'invalid_type', "'stream_options.include_usage' must be a boolean, got a string."],
  ['user number', () => chat({ user: 5 }), 'user', 'invalid_type', "'user' must be a string, got a number."],
  ['seed string', () => chat({ seed: '1' }), 'seed', 'invalid_type', "'seed' must be a number, got a string."],
  ['seed fraction', () => chat({ seed: 0.5 }), 'seed', 'invalid_value', "'seed' must be an integer, got 0.5."],
  ['seed too big', () => chat({ seed: 2 ** 53 }), 'seed', 'invalid_value', "'seed' must be at least -9007199254740991 and at most 9007199254740991, got 9007199254740992."],
  ['stop number', () => chat({ stop: 3 }), 'stop', 'invalid_type', "'stop' must be a string or an array of strings, got a number."],
  ['stop five', () => chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), 'stop', 'invalid_value', "'stop' may hold at most 4 strings, got 5."],
  ['stop entry number', () => chat({ stop: ['a', 1] }), 'stop[1]', 'invalid_type', "'stop[1]' must be a string, got a number."],
  ['stop entry empty', () => chat({ stop: ['a', ''] }), 'stop[1]', 'invalid_value', "'stop[1]' must not be empty."],
  ['n above max', () => chat({ n: 5 }), 'n', 'invalid_value', "'n' must be at least 1 and at most 4, got 5."],
  ['n zero', () => chat({ n: 0 }), 'n', 'invalid_value', "'n' must be at least 1 and at most 4, got 0."],
  ['top_p Infinity', () => chat({ temperature: null, top_p: Infinity }), 'top_p', 'invalid_type', "'top_p' must be a number, got a number."],
  ['temperature above', () => chat({ temperature: 2.01 }), 'temperature', 'invalid_value', "'temperature' must be at least 0 and at most 2, got 2.01."],
  ['temperature below', () => chat({ temperature: -0.01 }), 'temperature', 'invalid_value', "'temperature' must be at least 0 and at most 2, got -0.01."],
  ['top_p zero', () => chat({ top_p: 0 }), 'top_p', 'invalid_value', "'top_p' must be greater than 0 and at most 1, got 0."],
  ['top_p above', () => chat({ top_p: 1.5 }), 'top_p', 'invalid_value', "'top_p' must be greater than 0 and at most 1, got 1.5."],
  ['top_k above vocab', () => chat({ top_k: 101 }), 'top_k', 'invalid_value', "'top_k' must be at least 0 and at most 100, got 101."],
  ['top_k fraction', () => chat({ top_k: 1.5 }), 'top_k', 'invalid_value', "'top_k' must be an integer, got 1.5."],
  ['min_p above', () => chat({ min_p: 1.01 }), 'min_p', 'invalid_value', "'min_p' must be at least 0 and at most 1, got 1.01."],
  ['presence below', () => chat({ presence_penalty: -2.5 }), 'presence_penalty', 'invalid_value', "'presence_penalty' must be at least -2 and at most 2, got -2.5."],
  ['frequency above', () => chat({ frequency_penalty: 2.5 }), 'frequency_penalty', 'invalid_value', "'frequency_penalty' must be at least -2 and at most 2, got 2.5."],
  ['repetition zero', () => chat({ repetition_penalty: 0 }), 'repetition_penalty', 'invalid_value', "'repetition_penalty' must be greater than 0 and at most 10, got 0."],
  ['repeat above', () => chat({ repeat_penalty: 10.5 }), 'repeat_penalty', 'invalid_value', "'repeat_penalty' must be greater than 0 and at most 10, got 10.5."],
  ['both penalties differ', () => chat({ repetition_penalty: 1.1, repeat_penalty: 1.2 }), 'repeat_penalty', 'invalid_value', "'repeat_penalty' (1.2) and 'repetition_penalty' (1.1) name the same setting; give one."],
  ['logit_bias array', () => chat({ logit_bias: [] }), 'logit_bias', 'invalid_type', "'logit_bias' must be an object mapping token ids to biases, got an array."],
  ['logit_bias key text', () => chat({ logit_bias: { a1: 1 } }), 'logit_bias.a1', 'invalid_value', "'logit_bias' key 'a1' is not a token id in [0, 100)."],
  ['logit_bias key negative', () => chat({ logit_bias: { '-1': 1 } }), 'logit_bias.-1', 'invalid_value', "'logit_bias' key '-1' is not a token id in [0, 100)."],
  ['logit_bias key vocab', () => chat({ logit_bias: { 100: 1 } }), 'logit_bias.100', 'invalid_value', "'logit_bias' key '100' is not a token id in [0, 100)."],
  ['logit_bias key huge', () => chat({ logit_bias: { '99999999999999999999': 1 } }), 'logit_bias.99999999999999999999', 'invalid_value', "'logit_bias' key '99999999999999999999' is not a token id in [0, 100)."],
  ['logit_bias value above', () => chat({ logit_bias: { 5: 100.5 } }), 'logit_bias.5', 'invalid_value', "'logit_bias.5' must be a number in [-100, 100], got 100.5."],
  ['logit_bias value below', () => chat({ logit_bias: { 5: -100.5 } }), 'logit_bias.5', 'invalid_value', "'logit_bias.5' must be a number in [-100, 100], got -100.5."],
  ['logit_bias value string', () => chat({ logit_bias: { 5: '1' } }), 'logit_bias.5', 'invalid_value', "'logit_bias.5' must be a number in [-100, 100], got \"1\"."],
  ['logit_bias value NaN', () => chat({ logit_bias: { 5: NaN } }), 'logit_bias.5', 'invalid_value', "'logit_bias.5' must be a number in [-100, 100], got NaN."],
  ['cache_prompt number', () => chat({ cache_prompt: 1 }), 'cache_prompt', 'invalid_type', "'cache_prompt' must be a boolean, got a number."],
  ['top_logprobs without logprobs', () => chat({ top_logprobs: 1 }), 'top_logprobs', 'invalid_value', "'top_logprobs' requires 'logprobs' to be true."],
  ['top_logprobs above', () => chat({ logprobs: true, top_logprobs: 21 }), 'top_logprobs', 'invalid_value', "'top_logprobs' must be at least 0 and at most 20, got 21."],
  ['continue after user', () => chat({ continue_final_message: true }), 'continue_final_message', 'invalid_value', "'continue_final_message' needs the last message to be from the assistant, got 'user'."],
  ['continue and gen prompt', () => parseChatRequest({ messages: [{ role: 'assistant', content: 'a' }], continue_final_message: true, add_generation_prompt: true }, limits), 'add_generation_prompt', 'invalid_value', "'continue_final_message' and 'add_generation_prompt' cannot both be true."],
  ['required tool_choice with a response_format', () => chat({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: 'required', response_format: { type: 'json_object' } }), 'tool_choice', 'invalid_value', "A required or named 'tool_choice' sets the output's grammar; it cannot be combined with a structured 'response_format'."],
  ['named tool_choice with a response_format', () => chat({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'function', function: { name: 'f' } }, response_format: { type: 'json_object' } }), 'tool_choice', 'invalid_value', "A required or named 'tool_choice' sets the output's grammar; it cannot be combined with a structured 'response_format'."],
  ['top_logprobs fraction', () => chat({ logprobs: true, top_logprobs: 1.5 }), 'top_logprobs', 'invalid_value', "'top_logprobs' must be an integer, got 1.5."],
  ['logprobs fraction', () => comp({ logprobs: 2.5 }), 'logprobs', 'invalid_value', "'logprobs' must be an integer, got 2.5."],
  ['best_of fraction', () => comp({ best_of: 1.5 }), 'best_of', 'invalid_value', "'best_of' must be an integer, got 1.5."],
  ['prompt null', () => parseCompletionRequest({ prompt: null }, limits), 'prompt', 'missing_required_parameter', "'prompt' is required."],
  ['tool-only assistant without content still needs tool_calls', () => parseChatRequest({ messages: [{ role: 'assistant' }] }, limits), 'messages[0].content', 'missing_required_parameter', "'messages[0].content' is required."],
  ['prompt missing', () => parseCompletionRequest({}, limits), 'prompt', 'missing_required_parameter', "'prompt' is required."],
  ['prompt number', () => parseCompletionRequest({ prompt: 3 }, limits), 'prompt', 'invalid_type', "'prompt' must be a string, an array of strings, or token ids, got a number."],
  ['prompt empty array', () => parseCompletionRequest({ prompt: [] }, limits), 'prompt', 'invalid_value', "'prompt' must not be an empty array."],
  ['prompt token out of vocab', () => parseCompletionRequest({ prompt: [1, 100] }, limits), 'prompt[1]', 'invalid_value', "'prompt[1]' must be a token id in [0, 100), got 100."],
  ['prompt token negative', () => parseCompletionRequest({ prompt: [-1] }, limits), 'prompt[0]', 'invalid_value', "'prompt[0]' must be a token id in [0, 100), got -1."],
  ['prompt token fraction', () => parseCompletionRequest({ prompt: [[1.5]] }, limits), 'prompt[0][0]', 'invalid_value', "'prompt[0][0]' must be a token id in [0, 100), got 1.5."],
  ['prompt token string in list', () => parseCompletionRequest({ prompt: [[1, 'a']] }, limits), 'prompt[0][1]', 'invalid_value', "'prompt[0][1]' must be a token id in [0, 100), got \"a\"."],
  ['too many prompts', () => parseCompletionRequest({ prompt: ['a', 'b', 'c', 'd'] }, limits), 'prompt', 'invalid_value', "'prompt' may hold at most 3 prompts, got 4."],
  ['prompt entry empty', () => parseCompletionRequest({ prompt: ['a', []] }, limits), 'prompt[1]', 'invalid_value', "'prompt[1]' must not be empty."],
  ['prompt entry object', () => parseCompletionRequest({ prompt: ['a', {}] }, limits), 'prompt[1]', 'invalid_type', "'prompt[1]' must be a string or an array of token ids, got a object."],
  ['prompts x n', () => parseCompletionRequest({ prompt: ['a', 'b', 'c'], n: 2 }, limits), 'n', 'invalid_value', '3 prompts x n=2 asks for 6 sequences; at most 4 fit at once.'],
  ['logprobs boolean', () => comp({ logprobs: true }), 'logprobs', 'invalid_type', "'logprobs' on /v1/completions must be an integer 0..20 (the number of top alternatives), got true."],
  ['logprobs above', () => comp({ logprobs: 21 }), 'logprobs', 'invalid_value', "'logprobs' must be at least 0 and at most 20, got 21."],
  ['best_of below n', () => comp({ n: 2, best_of: 1 }), 'best_of', 'invalid_value', "'best_of' (1) must be at least 'n' (2)."],
  ['best_of above max', () => comp({ best_of: 5 }), 'best_of', 'invalid_value', "'best_of' must be at least 1 and at most 4, got 5."],
  ['best_of streamed', () => comp({ best_of: 2, stream: true }), 'best_of', 'invalid_value', "'best_of' > 'n' cannot be streamed: which candidates are best is known only at the end."],
  ['best_of x prompts', () => parseCompletionRequest({ prompt: ['a', 'b', 'c'], best_of: 2 }, limits), 'best_of', 'invalid_value', '3 prompts x best_of=2 asks for 6 sequences; at most 4 fit at once.'],
  ['suffix number', () => comp({ suffix: 1 }), 'suffix', 'invalid_type', "'suffix' must be a string, got a number."],
  ['suffix text', () => comp({ suffix: 'end' }), 'suffix', 'unsupported_parameter', "'suffix' (fill in the middle) is not supported: this model has no infill tokens."],
];

for (const [what, fn, param, code, message] of CASES) {
  test(`refused: ${what}`, () => {
    const e = refusal(fn);
    assert.equal(e.status, 400);
    assert.equal(e.type, 'invalid_request_error');
    assert.equal(e.message, message);
    assert.equal(e.param, param);
    assert.equal(e.code, code);
  });
}

test('bounds are inclusive (exclusive where the message says "greater than")', () => {
  const s = chat({ temperature: 2, top_p: 1, top_k: 100, min_p: 1, presence_penalty: -2, frequency_penalty: 2, repetition_penalty: 10, logit_bias: { 0: -100, 99: 100 }, seed: -(2 ** 53 - 1) }).sampling;
  assert.deepEqual(
    [s.temperature, s.topP, s.topK, s.minP, s.presencePenalty, s.frequencyPenalty, s.repetitionPenalty, s.seed, [...s.logitBias]],
    [2, 1, 100, 1, -2, 2, 10, -(2 ** 53 - 1), [[0, -100], [99, 100]]],
  );
  const lo = chat({ temperature: 0, top_p: 1e-9, top_k: 0, min_p: 0, presence_penalty: 2, frequency_penalty: -2, repeat_penalty: 1e-9, n: 4, seed: 2 ** 53 - 1 });
  assert.deepEqual([lo.sampling.temperature, lo.sampling.topP, lo.sampling.topK, lo.sampling.minP, lo.sampling.repetitionPenalty, lo.n, lo.sampling.seed], [0, 1e-9, 0, 0, 1e-9, 4, 2 ** 53 - 1]);
  assert.equal(chat({ logprobs: true, top_logprobs: 20 }).topLogprobs, 20);
  assert.equal(comp({ logprobs: 20 }).logprobs, 20);
  assert.equal(comp({ logprobs: 0 }).logprobs, 0);
  assert.equal(comp({ max_tokens: 0 }).maxTokens, 0);
  assert.equal(chat({ max_tokens: 1 }).maxTokens, 1);
  assert.equal(chat({ max_tokens: 2 ** 53 - 1 }).maxTokens, 2 ** 53 - 1);
  assert.equal(chat({ stop: ['a', 'b', 'c', 'd'] }).stop.length, 4);
  assert.equal(parseCompletionRequest({ prompt: ['a', 'b', 'c'] }, limits).prompts.length, 3);
  assert.deepEqual(parseCompletionRequest({ prompt: [0, 99] }, limits).prompts, [{ kind: 'tokens', tokens: [0, 99] }]);
  assert.equal(parseCompletionRequest({ prompt: ['a', 'b'], n: 2 }, limits).n, 2);
  assert.equal(parseCompletionRequest({ prompt: ['a', 'b'], best_of: 2 }, limits).bestOf, 2);
  assert.equal(comp({ best_of: 4, n: 4 }).bestOf, 4);
});

test('defaults of every field; nulls mean the default', () => {
  const nulls = { model: null, max_tokens: null, max_completion_tokens: null, stop: null, n: null, stream: null, stream_options: null, user: null, seed: null, temperature: null, top_p: null, top_k: null, min_p: null, presence_penalty: null, frequency_penalty: null, repetition_penalty: null, repeat_penalty: null, logit_bias: null, cache_prompt: null };
  for (const r of [chat({}), chat(nulls)]) {
    assert.equal(r.model, undefined);
    assert.equal(r.maxTokens, undefined);
    assert.deepEqual(r.stop, []);
    assert.equal(r.n, 1);
    assert.equal(r.stream, false);
    assert.equal(r.includeUsage, false);
    assert.equal(r.user, undefined);
    assert.deepEqual({ ...r.sampling, logitBias: [...r.sampling.logitBias] }, { temperature: 1, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, seed: undefined, logitBias: [] });
    assert.equal(r.cachePrompt, true);
    assert.equal(r.grammar, null);
    assert.equal(r.logprobs, false);
    assert.equal(r.topLogprobs, 0);
    assert.equal(r.continueFinal, false);
    assert.equal(r.addGenerationPrompt, true);
    assert.equal(r.tools, null);
  }
  const c = parseCompletionRequest({ prompt: 'x', logprobs: null, best_of: null, suffix: null, echo: null }, limits);
  assert.equal(c.echo, false);
  assert.equal(c.logprobs, null);
  assert.equal(c.bestOf, 1);
  assert.deepEqual(parseCompletionRequest({ prompt: 'x', suffix: '' }, limits).prompts, [{ kind: 'text', text: 'x' }]);
});

test('accepted fields come through as given', () => {
  const r = chat({ model: 'm', user: 'u', stream: true, stream_options: { include_usage: false }, cache_prompt: false, top_k: 7, min_p: 0.25, presence_penalty: 0.5, frequency_penalty: -0.5, repeat_penalty: 1.3, seed: -5, max_tokens: 9, stop: 'END' });
  assert.equal(r.model, 'm');
  assert.equal(r.user, 'u');
  assert.equal(r.stream, true);
  assert.equal(r.includeUsage, false);
  assert.equal(r.cachePrompt, false);
  assert.equal(r.maxTokens, 9);
  assert.deepEqual(r.stop, ['END']);
  assert.deepEqual([r.sampling.topK, r.sampling.minP, r.sampling.presencePenalty, r.sampling.frequencyPenalty, r.sampling.repetitionPenalty, r.sampling.seed], [7, 0.25, 0.5, -0.5, 1.3, -5]);
  assert.equal(chat({ stream: true, stream_options: { include_usage: null } }).includeUsage, false);
  // Both penalty names may be given when they agree.
  assert.equal(chat({ repetition_penalty: 1.2, repeat_penalty: 1.2 }).sampling.repetitionPenalty, 1.2);
  assert.equal(chat({ repetition_penalty: 1.2 }).sampling.repetitionPenalty, 1.2);
  const c = parseCompletionRequest({ prompt: [[1, 2], 'b'], echo: true, logprobs: 3, max_tokens: 0 }, limits);
  assert.deepEqual(c.prompts, [{ kind: 'tokens', tokens: [1, 2] }, { kind: 'text', text: 'b' }]);
  assert.equal(c.echo, true);
  assert.equal(c.logprobs, 3);
  assert.equal(c.maxTokens, 0);
});

test('null fields and null message keys mean absent', () => {
  // One penalty name null, the other set: the set one counts, no conflict.
  assert.equal(chat({ repetition_penalty: null, repeat_penalty: 1.3 }).sampling.repetitionPenalty, 1.3);
  assert.equal(chat({ repetition_penalty: 1.2, repeat_penalty: null }).sampling.repetitionPenalty, 1.2);
  assert.equal(chat({ stream: true, stream_options: {} }).includeUsage, false);
  const r = parseChatRequest({ messages: [{ role: 'system', content: 's', name: 'rules' }, { role: 'user', content: 'u', tool_call_id: null, tool_calls: null }, { role: 'assistant', tool_calls: [{ function: { name: 'f', arguments: '{}' } }] }] }, limits);
  assert.deepEqual(r.messages, [
    { role: 'system', content: 's', name: 'rules' },
    { role: 'user', content: 'u' },
    { role: 'assistant', content: '', toolCalls: [{ id: 'call_0', name: 'f', arguments: '{}' }] },
  ]);
});

test('tools with tool_choice auto or none may be combined with a response_format', () => {
  const tools = [{ type: 'function', function: { name: 'f' } }];
  for (const tool_choice of ['auto', 'none']) {
    const r = chat({ tools, tool_choice, response_format: { type: 'json_object' } });
    assert.equal(r.tools?.choice.mode, tool_choice);
    assert.ok(r.grammar !== null);
  }
  assert.equal(chat({ tools, tool_choice: 'required' }).tools?.choice.mode, 'required');
});

test('messages: names, tool calls, tool answers, developer role, prefill rules', () => {
  const r = parseChatRequest({
    messages: [
      { role: 'developer', content: 'sys', name: null },
      { role: 'user', content: 'q', name: 'ann' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }, { function: { name: 'g', arguments: '{}' } }], name: 'bot' },
      { role: 'tool', content: 'r', tool_call_id: 'c1' },
      { role: 'assistant', content: [{ type: 'text', text: 'pre' }], tool_calls: [{ function: { name: 'h', arguments: '' } }] },
    ],
  }, limits);
  assert.deepEqual(r.messages, [
    { role: 'system', content: 'sys' },
    { role: 'user', content: 'q', name: 'ann' },
    { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'f', arguments: '{"a":1}' }, { id: 'call_1', name: 'g', arguments: '{}' }], name: 'bot' },
    { role: 'tool', content: 'r', toolCallId: 'c1' },
    { role: 'assistant', content: 'pre', toolCalls: [{ id: 'call_0', name: 'h', arguments: '' }] },
  ]);
  // Ending on an assistant message continues it, unless a generation prompt is asked for.
  assert.deepEqual([r.continueFinal, r.addGenerationPrompt], [true, false]);
  const asst = [{ role: 'assistant', content: 'a' }];
  const g = parseChatRequest({ messages: asst, add_generation_prompt: true }, limits);
  assert.deepEqual([g.continueFinal, g.addGenerationPrompt], [false, true]);
  const f = parseChatRequest({ messages: asst, continue_final_message: true }, limits);
  assert.deepEqual([f.continueFinal, f.addGenerationPrompt], [true, false]);
  const n = parseChatRequest({ messages: asst, add_generation_prompt: false }, limits);
  assert.deepEqual([n.continueFinal, n.addGenerationPrompt], [true, false]);
  const u = parseChatRequest({ messages: USER, add_generation_prompt: false }, limits);
  assert.deepEqual([u.continueFinal, u.addGenerationPrompt], [false, false]);
  // An assistant message without content and without tool calls still needs content.
  assert.equal(refusal(() => parseChatRequest({ messages: [{ role: 'assistant', tool_calls: null }] }, limits)).param, 'messages[0].content');
  assert.equal(refusal(() => parseChatRequest({ messages: [{ role: 'assistant', content: null }] }, limits)).param, 'messages[0].content');
});
