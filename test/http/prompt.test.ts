// Prompt text -> tokens for the routes (server/http/prompt.ts), inline and through a text
// service: the tokens, the early refusal of a text that cannot fit the context (by size,
// before tokenising, with the param it came from), and how the text worker's failures
// become API errors (a template error 400, busy 429 with Retry-After, a stopped or dead
// worker 500 naming the stage; anything else passes through unchanged).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpmTokenizer } from '../../server/tokenizer/spm.js';
import { SpmVocab } from '../../server/tokenizer/vocab.js';
import { adaptTokenizer } from '../../server/scheduler/tokenizer-adapter.js';
import { ChatTemplate, ChatTemplateError } from '../../server/chat/template.js';
import { TextWorkerBusyError, TextWorkerError } from '../../server/chat/text-worker.js';
import type { ModelRuntime, TextService } from '../../server/scheduler/runtime.js';
import type { TokensOrBound } from '../../server/chat/prompt-tokens.js';
import { ApiError } from '../../server/http/errors.js';
import { chatPrompt, textPrompt } from '../../server/http/prompt.js';

// <unk> <s> </s> ▁ a ▁a: no token stands for more than 5 bytes ("<unk>"), so n bytes need at least n / 5 tokens.
const tok = adaptTokenizer(
  new SpmTokenizer(new SpmVocab({ tokens: ['<unk>', '<s>', '</s>', '\u2581', 'a', '\u2581a'], types: [2, 3, 3, 1, 1, 1], scores: [0, 0, 0, -10, -10, -1] })),
  new Map(),
);
const template = new ChatTemplate(
  "{{ bos_token }}{% for m in messages %}{% if m.content == 'boom' %}{{ raise_exception('no booms') }}{% endif %}{{ m.content }}{{ eos_token }}{% endfor %}",
  'the test template',
  { bosToken: '<s>', eosToken: '</s>' },
);

function runtime(text?: TextService): ModelRuntime {
  return { nCtx: 8, tokenizer: tok, template, ...(text ? { text } : {}) } as unknown as ModelRuntime;
}

/** The ApiError a promise rejects with, as [status, code, param, message]. */
async function refusal(p: Promise<unknown>): Promise<[number, string | null, string | null, string, Record<string, string>]> {
  const err = await p.then(
    () => assert.fail('expected a refusal'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApiError, `not an ApiError: ${String(err)}`);
  return [err.status, err.code, err.param, err.message, err.headers];
}

const tooLong = (atLeast: number) =>
  `This model's maximum context length is 8 tokens, but the prompt is at least ${atLeast} tokens (judged by its size); at least one token must be left for the reply.`;

test('inline: text prompts are tokenised, and refused by size when they cannot fit', async () => {
  assert.deepEqual(await textPrompt(runtime(), 'a a', true, 'prompt', 8), [1, 5, 5]);
  assert.deepEqual(await textPrompt(runtime(), 'a a', false, 'prompt', 8), [5, 5]);
  // 35 bytes are at least 7 tokens, 8 with BOS: nothing left for the reply.
  const long = 'a'.repeat(35);
  assert.deepEqual(await refusal(textPrompt(runtime(), long, true, 'input', 8)), [400, 'context_length_exceeded', 'input', tooLong(8), {}]);
  // A text prompt is plain text: "</s>" in it is not the EOS token.
  assert.ok(!(await textPrompt(runtime(), 'a</s>', false, 'prompt', null)).includes(2));
  // No limit (/tokenize): any length.
  assert.equal((await textPrompt(runtime(), long, true, 'content', null)).length, 36);
});

test('inline: chat prompts render the template (its BOS and EOS text become those tokens), and are refused by size too', async () => {
  assert.deepEqual(await chatPrompt(runtime(), [{ role: 'user', content: 'a a' }]), [1, 5, 5, 2]);
  const [status, code, param, message] = await refusal(chatPrompt(runtime(), [{ role: 'user', content: 'a'.repeat(40) }]));
  assert.deepEqual([status, code, param, message], [400, 'context_length_exceeded', 'messages', tooLong(10)]);
  // An error the template raises is the request's: 400 on messages.
  const bad = await refusal(chatPrompt(runtime(), [{ role: 'user', content: 'boom' }]));
  assert.deepEqual(bad.slice(0, 3), [400, 'invalid_messages', 'messages']);
  assert.match(bad[3], /the chat template \(the test template\) failed on these messages: .*no booms/);
});

/** A text service that answers with `r`, or rejects with `err`, and records its calls. */
function service(r: TokensOrBound | Error) {
  const calls: unknown[][] = [];
  const answer = async (...args: unknown[]) => {
    calls.push(args);
    if (r instanceof Error) throw r;
    return r;
  };
  return { calls, text: { chat: answer, encode: answer } as TextService };
}

test('with a text service: its tokens or its bound, with the limit and options passed on', async () => {
  const s = service({ tokens: [1, 4] });
  const messages = [{ role: 'user' as const, content: 'x' }];
  assert.deepEqual(await chatPrompt(runtime(s.text), messages, { addGenerationPrompt: false }), [1, 4]);
  assert.deepEqual(await textPrompt(runtime(s.text), 'x', true, 'prompt', 6), [1, 4]);
  assert.deepEqual(s.calls, [[messages, 8, { addGenerationPrompt: false }], ['x', true, false, 6]]);
  const b = service({ atLeast: 9 });
  assert.deepEqual((await refusal(chatPrompt(runtime(b.text), messages))).slice(0, 4), [400, 'context_length_exceeded', 'messages', tooLong(9)]);
  assert.deepEqual((await refusal(textPrompt(runtime(b.text), 'x', false, 'prompt', 8))).slice(0, 4), [400, 'context_length_exceeded', 'prompt', tooLong(9)]);
});

test('text worker failures become API errors; other errors pass through', async () => {
  const messages = [{ role: 'user' as const, content: 'x' }];
  const both = async (err: Error) => [
    await refusal(chatPrompt(runtime(service(err).text), messages)),
    await refusal(textPrompt(runtime(service(err).text), 'x', true, 'prompt', 8)),
  ];
  for (const r of await both(new ChatTemplateError('roles must alternate'))) {
    assert.deepEqual(r, [400, 'invalid_messages', 'messages', 'roles must alternate', {}]);
  }
  for (const r of await both(new TextWorkerBusyError(3))) {
    assert.deepEqual(r, [429, 'queue_full', null, 'The server is busy: 3 prompts are already waiting to be tokenised. Retry later.', { 'retry-after': '1' }]);
  }
  for (const r of await both(new TextWorkerError('rendering the chat template took longer than 5 ms and was stopped', true))) {
    assert.deepEqual(r, [500, 'chat_template_failed', null, 'The chat template (the test template) could not be used: rendering the chat template took longer than 5 ms and was stopped.', {}]);
  }
  for (const r of await both(new TextWorkerError('the text worker exited while tokenising the prompt', false))) {
    assert.deepEqual(r, [500, 'tokenizer_failed', null, 'The prompt could not be tokenised: the text worker exited while tokenising the prompt.', {}]);
  }
  const other = new RangeError('something else');
  await assert.rejects(chatPrompt(runtime(service(other).text), messages), (e) => e === other);
  await assert.rejects(textPrompt(runtime(service(other).text), 'x', true, 'prompt', 8), (e) => e === other);
});
