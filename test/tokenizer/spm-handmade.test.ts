// Small hand-made vocabularies whose encodings can be worked out by hand: merge order,
// ties, unknown tokens without byte fallback, unused pieces, metadata errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GgufValue } from '../../server/engine/types.js';
import { SpmTokenizer } from '../../server/tokenizer/spm.js';
import { SpmVocab, TokenizerError } from '../../server/tokenizer/vocab.js';

function vocab(pieces: [string, number, number?][], extra: Partial<ConstructorParameters<typeof SpmVocab>[0]> = {}) {
  return new SpmTokenizer(
    new SpmVocab({
      tokens: ['<unk>', '<s>', '</s>', ...pieces.map((p) => p[0])],
      scores: [0, 0, 0, ...pieces.map((p) => p[1])],
      types: [2, 3, 3, ...pieces.map((p) => p[2] ?? 1)],
      ...extra,
    }),
  );
}

test('the highest-scoring pair merges first', () => {
  // "▁abc": pairs ▁a (-5), ab (-1), bc (-2). ab wins, then ▁ + ab? not a piece; abc (-3) is.
  const t = vocab([['▁', -10], ['a', -10], ['b', -10], ['c', -10], ['▁a', -5], ['ab', -1], ['bc', -2], ['abc', -3]]);
  const ids = t.encode('abc', { addBos: false });
  assert.deepEqual(ids.map((i) => t.piece(i)), ['▁', 'abc']);
});

test('equal scores merge leftmost first', () => {
  // "▁aaa": aa at 1-2 and 2-3 tie; the left one wins, leaving "aa" + "a".
  const t = vocab([['▁', -10], ['a', -10], ['aa', -1]]);
  assert.deepEqual(t.encode('aaa', { addBos: false }).map((i) => t.piece(i)), ['▁', 'aa', 'a']);
});

test('without byte tokens an unknown run becomes one <unk>', () => {
  const t = vocab([['▁', -10], ['a', -10]]);
  assert.deepEqual(t.encode('a€€a', { addBos: false }), [3, 4, 0, 4]);
  assert.equal(t.decode([3, 4, 0, 4]), 'a ⁇ a');
});

test('unused pieces are split back into the pieces that formed them', () => {
  // "ab" is unused (type 5): a merge may pass through it, but it is never output.
  const t = vocab([['▁', -10], ['a', -10], ['b', -10], ['ab', -1, 5]]);
  assert.deepEqual(t.encode('ab', { addBos: false }).map((i) => t.piece(i)), ['▁', 'a', 'b']);
});

test('no dummy prefix when add_space_prefix is false', () => {
  const t = vocab([['▁', -10], ['a', -10], ['▁a', -1]], { addSpacePrefix: false });
  assert.deepEqual(t.encode('a a', { addBos: false }).map((i) => t.piece(i)), ['a', '▁a']);
  assert.equal(t.decode(t.encode('a a', { addBos: false })), 'a a');
  assert.equal(t.decode([5]), ' a'); // nothing to strip either
});

test('bad metadata is refused with the key named', () => {
  const base = (): Map<string, GgufValue> =>
    new Map<string, GgufValue>([
      ['tokenizer.ggml.model', 'llama'],
      ['tokenizer.ggml.tokens', ['<unk>', '<s>', '</s>', 'a']],
      ['tokenizer.ggml.scores', [0, 0, 0, -1]],
      ['tokenizer.ggml.token_type', [2, 3, 3, 1]],
    ]);
  assert.equal(SpmTokenizer.fromMetadata(base()).nVocab, 4);
  const bad = (key: string, value: GgufValue | undefined, re: RegExp) => {
    const m = base();
    if (value === undefined) m.delete(key);
    else m.set(key, value);
    assert.throws(() => SpmTokenizer.fromMetadata(m), (e: unknown) => e instanceof TokenizerError && re.test(e.message));
  };
  bad('tokenizer.ggml.model', 'gpt2', /tokenizer\.ggml\.model is "gpt2"/);
  bad('tokenizer.ggml.model', undefined, /has no tokenizer/);
  bad('tokenizer.ggml.tokens', 'x', /tokenizer\.ggml\.tokens is missing or not an array/);
  bad('tokenizer.ggml.scores', [0, 0], /scores has 2 entries, expected 4/);
  bad('tokenizer.ggml.token_type', [2, 3, 3, 9], /token_type\[3\] = 9/);
  bad('tokenizer.ggml.bos_token_id', 17, /bos_token_id = 17 is outside the vocabulary/);
  bad('tokenizer.ggml.add_bos_token', 1, /add_bos_token must be a boolean/);
  bad('tokenizer.ggml.token_type', [2, 3, 3, 6], /byte token 3 has piece "a"/);
});

test('out-of-range ids are refused by decode', () => {
  const t = vocab([['a', -1]]);
  assert.throws(() => t.decode([99]), /token id 99 is outside the vocabulary \(0\.\.3\)/);
  assert.throws(() => t.decode([-1]), /token id -1/);
});

test('plain text never becomes a control token, even one the vocabulary lists again as a normal piece', () => {
  // "<s>" is control (id 1); id 8 lists the same text as a normal piece, which merges reach.
  const t = vocab([['▁', -10], ['<', -10], ['s', -10], ['>', -10], ['<s', -2], ['<s>', -1]]);
  assert.deepEqual(t.encode('<s>', { addBos: false }), [3, 8]);
  // Without the normal duplicate the merges stop short of it.
  const u = vocab([['▁', -10], ['<', -10], ['s', -10], ['>', -10], ['<s', -2]]);
  assert.deepEqual(u.encode('<s>', { addBos: false }).map((i) => u.piece(i)), ['▁', '<s', '>']);
  // parseSpecial splits on a control piece only where its text first means that token.
  const v = vocab([['▁', -10], ['X', -10], ['X', 0, 3]]);
  assert.deepEqual(v.encode('X', { addBos: false, parseSpecial: true }), [3, 4]);
});

test('a normal piece listed twice merges with its first entry\'s score and comes out as that id', () => {
  // ab (-1) beats bc (-2); the second "ab" (-5, id 9) would lose to bc.
  const t = vocab([['▁', -10], ['a', -10], ['b', -10], ['c', -10], ['ab', -1], ['bc', -2], ['ab', -5]]);
  assert.deepEqual(t.encode('abc', { addBos: false }), [3, 7, 6]);
});

test('an unused piece is a step toward a longer piece; a one-character unused piece is output as is', () => {
  const t = vocab([['▁', -10], ['a', -10], ['b', -10], ['c', -10], ['ab', -1, 5], ['abc', -2], ['q', -10, 5]]);
  assert.deepEqual(t.encode('abc', { addBos: false }).map((i) => t.piece(i)), ['▁', 'abc']);
  // As in sentencepiece: an unused symbol no merge produced has no parts to split into.
  assert.deepEqual(t.encode('q', { addBos: false }), [3, 9]);
});

/** X (user-defined, id 0 and named the unknown token) <s> ▁ a Xa aX XX ab abc (user-defined). */
function userDefined(): SpmTokenizer {
  return new SpmTokenizer(
    new SpmVocab({
      tokens: ['X', '<s>', '▁', 'a', 'Xa', 'aX', 'XX', 'ab', 'abc'],
      scores: [0, 0, -10, -10, 0, 0, 0, 0, 0],
      types: [4, 3, 1, 1, 1, 1, 1, 4, 4],
      unkId: 0,
    }),
  );
}

test('user-defined pieces are kept whole: never merged with a neighbour, the longest one wins', () => {
  const t = userDefined();
  // "aX", "Xa" and "XX" are pieces, but X is user-defined, so it stands alone (even at id 0).
  assert.deepEqual(t.encode('aXa', { addBos: false }), [2, 3, 0, 3]);
  // Two in a row are two tokens, though the file names X as the unknown token.
  assert.deepEqual(t.encode('XX', { addBos: false }), [2, 0, 0]);
  // "ab" comes before "abc" in the vocabulary; the longer match wins, with or without parseSpecial.
  assert.deepEqual(t.encode('abc', { addBos: false }), [2, 8]);
  assert.deepEqual(t.encode('abc', { addBos: false, parseSpecial: true }), [8]);
});

test('an encoding does not depend on what was encoded before (the symbol buffers are reused)', () => {
  const t = userDefined();
  const fresh = userDefined().encode('a', { addBos: false });
  assert.deepEqual(fresh, [2, 3]);
  t.encode('aaX', { addBos: false });
  assert.deepEqual(t.encode('a', { addBos: false }), fresh);
});

test('without byte tokens each unknown run is one <unk>, also first, alone, and after a user-defined piece', () => {
  // <unk> <s> </s> X (user-defined) a; no dummy prefix, so nothing known comes first.
  const t = new SpmTokenizer(
    new SpmVocab({ tokens: ['<unk>', '<s>', '</s>', 'X', 'a'], types: [2, 3, 3, 4, 1], addSpacePrefix: false, addBos: false }),
  );
  assert.deepEqual(t.encode('€'), [0]);
  assert.deepEqual(t.encode('a€a'), [4, 0, 4]);
  assert.deepEqual(t.encode('€€X€'), [0, 3, 0]);
  assert.deepEqual(t.encode('aX'), [4, 3]);
});

test('lone surrogates are one symbol each (spelled as U+FFFD); a pair is one character; the unknown piece\'s text is unknown', () => {
  // ? (unknown) <s> </s> <0x00>..<0xFF> (ids 3..258) a ｱ
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const t = new SpmTokenizer(
    new SpmVocab({
      tokens: ['?', '<s>', '</s>', ...bytes, 'a', 'ｱ'],
      types: [2, 3, 3, ...bytes.map(() => 6), 1, 1],
      addSpacePrefix: false,
      addBos: false,
    }),
  );
  const spelled = (s: string) => [...new TextEncoder().encode(s)].map((b) => 3 + b);
  const [a, ka] = [259, 260];
  assert.deepEqual(t.encode('a\udc00'), [a, ...spelled('\ufffd')]);
  assert.deepEqual(t.encode('ｱ\udc00'), [ka, ...spelled('\ufffd')]);
  assert.deepEqual(t.encode('\ud83da'), [...spelled('\ufffd'), a]);
  assert.deepEqual(t.encode('\udc00\udc00'), spelled('\ufffd\ufffd'));
  assert.deepEqual(t.encode('\ud800\udc00'), spelled('\u{10000}'));
  assert.deepEqual(t.encode('\udbff\udfffa'), [...spelled('\u{10ffff}'), a]);
  // "?" is the unknown token's piece, but text spelling it is still unknown text: its bytes.
  assert.deepEqual(t.encode('?'), spelled('?'));
  assert.deepEqual(t.tokenBytes(3), Uint8Array.of(0));
});
