// Logprob shapes (server/http/logprobs.ts) on a hand-made vocabulary seen through the
// runtime tokenizer: chat's per-token {token, logprob, bytes, top_logprobs}, the legacy
// completions' parallel lists (prompt tokens unscored, the listed token always among the
// top ones), and the offsets of each token's text in the returned text.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpmTokenizer } from '../../server/tokenizer/spm.js';
import { SpmVocab } from '../../server/tokenizer/vocab.js';
import { adaptTokenizer } from '../../server/scheduler/tokenizer-adapter.js';
import { chatLogprobs, completionLogprobs, pickEntries, promptOffsets } from '../../server/http/logprobs.js';

const PIECES: [string, number][] = [
  ['<unk>', 2],
  ['<s>', 3],
  ['</s>', 3],
  ['\u2581', 1],
  ['\u2581Hello', 1],
  ['\u2581world', 1],
  ['a', 1],
  ['<0xE2>', 6],
  ['<0xF0>', 6],
];
const id = (p: string) => PIECES.findIndex((x) => x[0] === p);
const [BOS, HELLO, WORLD, A, E2] = [id('<s>'), id('\u2581Hello'), id('\u2581world'), id('a'), id('<0xE2>')];
const rt = adaptTokenizer(
  new SpmTokenizer(new SpmVocab({ tokens: PIECES.map((p) => p[0]), types: PIECES.map((p) => p[1]), scores: PIECES.map(() => -1) })),
  new Map(),
);
const bytes = (s: string) => [...Buffer.from(s, 'utf8')];

test('chat: each token with its text, logprob, UTF-8 bytes and its top alternatives', () => {
  const got = chatLogprobs(rt, [
    { token: HELLO, logprob: -0.25, top: [{ token: HELLO, logprob: -0.25 }, { token: WORLD, logprob: -2 }] },
    { token: E2, logprob: -1 },
    { token: A },
  ]);
  assert.deepEqual(got, [
    {
      token: ' Hello',
      logprob: -0.25,
      bytes: bytes(' Hello'),
      top_logprobs: [
        { token: ' Hello', logprob: -0.25, bytes: bytes(' Hello') },
        { token: ' world', logprob: -2, bytes: bytes(' world') },
      ],
    },
    // A lone lead byte is not text on its own: U+FFFD as the token, the byte itself in bytes.
    { token: '\ufffd', logprob: -1, bytes: [0xe2], top_logprobs: [] },
    { token: 'a', logprob: 0, bytes: [0x61], top_logprobs: [] },
  ]);
  assert.deepEqual(chatLogprobs(rt, []), []);
});

test('completions: parallel lists; an unscored token has null logprob and top; the listed token is always in its top', () => {
  const got = completionLogprobs(rt, [
    { token: BOS, logprob: null, top: null, offset: 0 },
    { token: HELLO, logprob: -0.5, top: [{ token: WORLD, logprob: -0.25 }], offset: 0 },
    { token: WORLD, logprob: -1, top: [{ token: WORLD, logprob: -1 }, { token: HELLO, logprob: -2 }], offset: 5 },
    { token: A, logprob: -4, top: null, offset: 11 },
  ]);
  assert.deepEqual(got, {
    tokens: ['', ' Hello', ' world', 'a'],
    token_logprobs: [null, -0.5, -1, -4],
    top_logprobs: [null, { ' world': -0.25, ' Hello': -0.5 }, { ' world': -1, ' Hello': -2 }, { a: -4 }],
    text_offset: [0, 0, 5, 11],
  });
  assert.deepEqual(completionLogprobs(rt, []), { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] });
});

test('completions: a text two tokens share keeps the more likely one\'s logprob', () => {
  // <0xE2> and <0xF0> both read as U+FFFD on their own.
  const [e2, f0] = [E2, id('<0xF0>')];
  const top = (entries: [number, number][]) => entries.map(([token, logprob]) => ({ token, logprob }));
  const got = completionLogprobs(rt, [
    { token: f0, logprob: -3, top: top([[A, -0.5], [e2, -1], [f0, -3]]), offset: 0 },
    // The listed token fell outside its top list, but its text is in there from another token.
    { token: f0, logprob: -3, top: top([[A, -0.5], [e2, -1]]), offset: 0 },
  ]);
  assert.deepEqual(got.top_logprobs, [{ a: -0.5, '\ufffd': -1 }, { a: -0.5, '\ufffd': -1 }]);
});

test('generated picks become entries with offsets after what precedes them; a prompt\'s offsets index its echoed text', () => {
  const top = [{ token: HELLO, logprob: -1 }];
  assert.deepEqual(pickEntries([{ token: HELLO, logprob: -1, top }, { token: A }], [0, 6], 11), [
    { token: HELLO, logprob: -1, top, offset: 11 },
    { token: A, logprob: null, top: null, offset: 17 },
  ]);
  // "<s>▁Hello▁worlda" echoes as "Hello worlda": BOS has no text, the first space is dropped.
  const prompt = [BOS, HELLO, WORLD, A];
  assert.equal(rt.decode(prompt), 'Hello worlda');
  assert.deepEqual(promptOffsets(rt, prompt), [0, 0, 5, 11]);
  assert.deepEqual(promptOffsets(rt, []), []);
});
