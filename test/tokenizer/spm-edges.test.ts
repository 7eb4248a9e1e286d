// Edges of the tokenizer's API that the sentencepiece fixture does not reach (found by
// mutation testing, npm run mutate): refusals when BOS/EOS/unknown are missing, the
// bytes each token type stands for (OpenAI logprobs `bytes`), the stream decoder's id
// check, and what a control token rendered mid-character flushes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpmTokenizer } from '../../server/tokenizer/spm.js';
import { SpmVocab, TokenizerError } from '../../server/tokenizer/vocab.js';

const enc = new TextEncoder();

/** <unk> <s> </s> ▁ a ▁a <0xE2> <0x82> <0xAC> */
function tokenizer(extra: Partial<ConstructorParameters<typeof SpmVocab>[0]> = {}): SpmTokenizer {
  return new SpmTokenizer(
    new SpmVocab({
      tokens: ['<unk>', '<s>', '</s>', '\u2581', 'a', '\u2581a', '<0xE2>', '<0x82>', '<0xAC>'],
      scores: [0, 0, 0, -10, -10, -1, 0, 0, 0],
      types: [2, 3, 3, 1, 1, 1, 6, 6, 6],
      ...extra,
    }),
  );
}

const refusal = (message: string) => (e: unknown) => e instanceof TokenizerError && e.message === message;

test('encode refuses what it cannot do, with the reason', () => {
  const noSpecials = new SpmTokenizer(new SpmVocab({ tokens: ['a', 'b'], addBos: false, addSpacePrefix: false }));
  assert.deepEqual(noSpecials.encode('ab'), [0, 1]);
  assert.throws(() => noSpecials.encode('a', { addBos: true }), refusal('encode: addBos requested but the vocabulary has no BOS token'));
  assert.throws(() => noSpecials.encode('a', { addEos: true }), refusal('encode: addEos requested but the vocabulary has no EOS token'));
  assert.throws(() => noSpecials.encode('c'), refusal('cannot encode "c": no byte tokens and no unknown token'));
  assert.throws(() => tokenizer().encode(5 as unknown as string), refusal('encode: text must be a string'));
  assert.throws(() => tokenizer().piece(9), refusal('token id 9 is outside the vocabulary (0..8)'));
  assert.throws(() => tokenizer().tokenBytes(1.5), refusal('token id 1.5 is outside the vocabulary (0..8)'));
  assert.equal(tokenizer().piece(8), '<0xAC>');
  assert.throws(() => tokenizer().piece(-1), refusal('token id -1 is outside the vocabulary (0..8)'));
  assert.throws(() => tokenizer().tokenBytes(-1), refusal('token id -1 is outside the vocabulary (0..8)'));
});

test('BOS or EOS at id 0 is added like any other id', () => {
  const bos0 = new SpmTokenizer(new SpmVocab({ tokens: ['<s>', '</s>', 'a'], types: [3, 3, 1], addSpacePrefix: false }));
  assert.deepEqual(bos0.encode('a', { addEos: true }), [0, 2, 1]);
  const eos0 = new SpmTokenizer(new SpmVocab({ tokens: ['</s>', '<s>', 'a'], types: [3, 3, 1], addSpacePrefix: false }));
  assert.deepEqual(eos0.encode('a', { addEos: true }), [1, 2, 0]);
});

test('parseSpecial adds no space prefix after a special token when the vocabulary has none', () => {
  assert.deepEqual(tokenizer({ addSpacePrefix: false }).encode('<s>a', { addBos: false, parseSpecial: true }), [1, 4]);
  assert.deepEqual(tokenizer().encode('<s>a', { addBos: false, parseSpecial: true }), [1, 5]);
});

test('BOS and EOS follow the vocabulary flags unless the caller says otherwise', () => {
  const t = tokenizer({ addBos: false, addEos: true });
  assert.deepEqual(t.encode('a'), [5, 2]);
  assert.deepEqual(t.encode('a', { addBos: true, addEos: false }), [1, 5]);
  assert.deepEqual(t.encode(''), [2]);
  assert.deepEqual([t.bosId, t.eosId, t.nVocab], [1, 2, 9]);
});

test('tokenBytes: a byte token its byte, control tokens nothing, <unk> " \u2047 ", others their piece with spaces', () => {
  const t = tokenizer();
  assert.deepEqual(t.tokenBytes(7), Uint8Array.of(0x82));
  assert.deepEqual(t.tokenBytes(1), new Uint8Array(0));
  assert.deepEqual(t.tokenBytes(0), enc.encode(' \u2047 '));
  assert.deepEqual(t.tokenBytes(5), enc.encode(' a'));
  assert.deepEqual(t.tokenBytes(3), enc.encode(' '));
});

test('the stream decoder refuses ids outside the vocabulary, and renders a control token after flushing held bytes', () => {
  const t = tokenizer();
  for (const id of [-1, 9, 0.5]) {
    assert.throws(() => t.streamDecoder().push(id), refusal(`token id ${id} is outside the vocabulary (0..8)`));
  }
  // "€" is E2 82 AC: two bytes held, then </s> rendered: the held bytes come out as U+FFFD each, first.
  const d = t.streamDecoder({ renderSpecial: true });
  assert.equal(d.push(6), '');
  assert.equal(d.push(7), '');
  assert.equal(d.hasPending, true);
  assert.equal(d.push(2), '\ufffd\ufffd</s>');
  assert.equal(d.hasPending, false);
  // Without renderSpecial the control token gives nothing and the bytes stay held.
  const q = t.streamDecoder();
  q.push(6);
  assert.equal(q.push(2), '');
  assert.equal(q.push(7) + q.push(8), '€');
  // A normal token after held bytes flushes them before its own text.
  const r = t.streamDecoder();
  r.push(6);
  assert.equal(r.push(4), '\ufffda');
});

test('the byte token <0x00> decodes to U+0000 like any other byte', () => {
  const t = new SpmTokenizer(new SpmVocab({ tokens: ['<unk>', '<s>', '<0x00>', '<0x41>'], types: [2, 3, 6, 6] }));
  assert.equal(t.decode([1, 2, 3, 2]), '\u0000A\u0000');
  assert.equal(t.streamDecoder().push(2), '\u0000');
});

test('the dummy prefix is dropped once, from the first text token only, never from <unk>', () => {
  const t = tokenizer();
  assert.equal(t.decode([1, 5, 5]), 'a a');
  assert.equal(t.decode([0, 5]), ' \u2047  a');
  // Even an unknown token whose piece starts with U+2581 reads whole.
  const odd = new SpmTokenizer(new SpmVocab({ tokens: ['\u2581unk', '<s>'], types: [2, 3] }));
  assert.equal(odd.decode([0]), ' \u2047 ');
  // A byte token first ends the start: the next token keeps its space.
  assert.equal(t.decode([6, 7, 8, 5]), '€ a');
  assert.equal(t.decode([5], { continuation: true }), ' a');
  // A vocabulary without the space prefix keeps every space.
  assert.equal(tokenizer({ addSpacePrefix: false }).decode([5]), ' a');
});
