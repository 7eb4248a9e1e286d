// adaptTokenizer on hand-made vocabularies: which ids end a sequence (EOS, a valid
// eot_token_id, nothing invalid), the continuation primer that keeps a completion's first
// space (and that no primer is pushed when the vocabulary has none), and that each
// RuntimeTokenizer member passes the right options through.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GgufValue } from '../../server/engine/types.js';
import { SpmTokenizer } from '../../server/tokenizer/spm.js';
import { SpmVocab, type SpmVocabData } from '../../server/tokenizer/vocab.js';
import { adaptTokenizer } from '../../server/scheduler/tokenizer-adapter.js';
import { maxTokenBytes } from '../../server/chat/prompt-tokens.js';

// Control tokens come first on purpose: a primer that is not a plain normal token (a
// control token gives no text and leaves the "first token" state unchanged) fails.
const PIECES: [string, number][] = [
  ['<s>', 3],
  ['</s>', 3],
  ['<|eot|>', 3],
  ['<unk>', 2],
  ['<0xE2>', 6],
  ['\u2581', 1],
  ['\u2581a', 1],
  ['a', 1],
  ['b', 1],
  ['\u2581ab\u2581cd', 1],
];
const id = (p: string) => PIECES.findIndex((x) => x[0] === p);

function make(extra: Partial<SpmVocabData> = {}, pieces = PIECES): SpmTokenizer {
  return new SpmTokenizer(new SpmVocab({ tokens: pieces.map((p) => p[0]), types: pieces.map((p) => p[1]), scores: pieces.map(() => -1), ...extra }));
}

const meta = (eot?: GgufValue) => new Map<string, GgufValue>(eot === undefined ? [] : [['tokenizer.ggml.eot_token_id', eot]]);

test('EOS and a valid eot_token_id end a sequence; nothing else does', () => {
  const rt = adaptTokenizer(make(), meta(id('<|eot|>')));
  assert.equal(rt.eosId, id('</s>'));
  assert.equal(rt.isEndToken(id('</s>')), true);
  assert.equal(rt.isEndToken(id('<|eot|>')), true);
  for (let i = 0; i < PIECES.length; i++) if (i !== id('</s>') && i !== id('<|eot|>')) assert.equal(rt.isEndToken(i), false, PIECES[i][0]);
  assert.equal(rt.isEndToken(-1), false);
});

test('an eot_token_id that is negative, past the vocabulary or not a number is ignored', () => {
  const n = PIECES.length;
  for (const bad of [-1, n, n + 5, String(id('<|eot|>'))] as GgufValue[]) {
    const rt = adaptTokenizer(make(), meta(bad));
    assert.equal(rt.isEndToken(id('<|eot|>')), false, `eot ${String(bad)}`);
    assert.equal(rt.isEndToken(-1), false);
    assert.equal(rt.isEndToken(n), false, `eot ${String(bad)}`);
    assert.equal(rt.isEndToken(n + 5), false);
  }
  // eot 0 is a valid id (>= 0, not > 0).
  assert.equal(adaptTokenizer(make(), meta(0)).isEndToken(0), true);
  // The last id is valid (< size, not <= size - 2).
  assert.equal(adaptTokenizer(make(), meta(n - 1)).isEndToken(n - 1), true);
});

test('without an EOS token no id (not even -1) ends a sequence', () => {
  const rt = adaptTokenizer(make({ eosId: -1, addBos: false }), meta());
  assert.equal(rt.eosId, -1);
  assert.equal(rt.eosText, '');
  assert.equal(rt.isEndToken(-1), false);
  assert.equal(rt.isEndToken(id('</s>')), false);
});

test('BOS and EOS texts are their pieces, empty when absent', () => {
  const rt = adaptTokenizer(make(), meta());
  assert.equal(rt.bosText, '<s>');
  assert.equal(rt.eosText, '</s>');
  assert.equal(rt.addBos, true);
  const none = adaptTokenizer(make({ bosId: -1, eosId: -1, addBos: false }), meta());
  assert.equal(none.bosText, '');
  assert.equal(none.addBos, false);
});

test('a continuation stream keeps the first token\'s leading space; a fresh one drops it', () => {
  const rt = adaptTokenizer(make(), meta());
  const cont = rt.stream(true);
  assert.equal(cont.push(id('\u2581a')), ' a');
  assert.equal(cont.push(id('\u2581a')), ' a');
  assert.equal(cont.flush(), '');
  const fresh = rt.stream(false);
  assert.equal(fresh.push(id('\u2581a')), 'a');
  assert.equal(fresh.push(id('\u2581a')), ' a');
});

test('stream flush ends a held-back byte as U+FFFD', () => {
  const s = adaptTokenizer(make(), meta()).stream(true);
  assert.equal(s.push(id('<0xE2>')), '');
  assert.equal(s.flush(), '\uFFFD');
});

test('a vocabulary with no plain primer token pushes none (and still streams)', () => {
  // Every normal piece starts with U+2581: there is no primer, so the first space drops.
  const pieces: [string, number][] = [['<s>', 3], ['</s>', 3], ['\u2581x', 1], ['\u2581y', 1]];
  const rt = adaptTokenizer(make({}, pieces), meta());
  const s = rt.stream(true);
  assert.equal(s.push(2), 'x');
  assert.equal(s.push(3), ' y');
});

test('encode passes addBos and parseSpecial through and never adds EOS; decode and tokenBytes are the tokenizer\'s', () => {
  const tok = make({ addEos: true });
  const rt = adaptTokenizer(tok, meta());
  assert.equal(rt.nVocab, PIECES.length);
  assert.deepEqual(rt.encode('a', true), [id('<s>'), id('\u2581a')]);
  assert.deepEqual(rt.encode('a', false), [id('\u2581a')]);
  // '</s>' as text: split into pieces unless special parsing is asked for.
  const plain = rt.encode('</s>', false);
  assert.ok(!plain.includes(id('</s>')), `${plain}`);
  assert.deepEqual(rt.encode('</s>', false, false), plain);
  assert.deepEqual(rt.encode('</s>', false, true), [id('</s>')]);
  assert.equal(rt.decode([id('\u2581a'), id('b')]), 'ab');
  assert.deepEqual([...rt.tokenBytes(id('\u2581a'))], [0x20, 0x61]);
  assert.deepEqual([...rt.tokenBytes(id('<0xE2>'))], [0xe2]);
  assert.equal(rt.maxTokenBytes, maxTokenBytes(PIECES.map((p) => p[0])));
  assert.equal(rt.maxTokenBytes, 10); // "▁ab▁cd": two 3-byte U+2581 and four letters
});

test('id 0 counts: EOS at id 0 ends a sequence and gives its text; a plain token at id 0 primes', () => {
  const pieces: [string, number][] = [['a', 1], ['<s>', 3], ['</s>', 3], ['\u2581b', 1]];
  const rt = adaptTokenizer(make({ eosId: 1, bosId: 2, addBos: false }, pieces), meta());
  // The primer is id 0 ("a"): a continuation keeps the leading space of "\u2581b".
  assert.equal(rt.stream(true).push(3), ' b');
  const zero = adaptTokenizer(make({ eosId: 0, bosId: 1, addBos: false }, [['</s>', 3], ['<s>', 3], ['\u2581b', 1]]), meta());
  assert.equal(zero.isEndToken(0), true);
  assert.equal(zero.eosText, '</s>');
});
