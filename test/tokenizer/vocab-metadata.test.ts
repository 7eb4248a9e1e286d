// The tokenizer.ggml.* keys as SpmVocab reads them: what each key defaults to, and each
// malformed value refused with its exact message (a model file with a broken vocabulary
// must say which key is wrong). Found missing by mutation testing (npm run mutate).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GgufValue } from '../../server/engine/types.js';
import { SpmVocab, TokenizerError, TokenType, vocabFromMetadata } from '../../server/tokenizer/vocab.js';

const base = (): Map<string, GgufValue> =>
  new Map<string, GgufValue>([
    ['tokenizer.ggml.model', 'llama'],
    ['tokenizer.ggml.tokens', ['<unk>', '<s>', '</s>', 'a', '<0x41>', 'a']],
    ['tokenizer.ggml.scores', [0, 0, 0, -1, 0, -2]],
    ['tokenizer.ggml.token_type', [2, 3, 3, 1, 6, 1]],
  ]);

function refused(edit: (m: Map<string, GgufValue>) => void, message: string): void {
  const m = base();
  edit(m);
  assert.throws(
    () => vocabFromMetadata(m),
    (e: unknown) => e instanceof TokenizerError && e.name === 'TokenizerError' && e.message === message,
    message,
  );
}

test('defaults: BOS and EOS by their pieces, UNK the first unknown-type token, no PAD, BOS added, no EOS, a space prefix', () => {
  const v = vocabFromMetadata(base());
  assert.equal(v.size, 6);
  assert.deepEqual([v.bosId, v.eosId, v.unkId, v.padId], [1, 2, 0, -1]);
  assert.deepEqual([v.addBos, v.addEos, v.addSpacePrefix], [true, false, true]);
  assert.equal(v.pieceToId.get('a'), 3, 'a repeated piece maps to its first id');
  assert.equal(v.byteToId[0x41], 4);
  assert.equal(v.idToByte[4], 0x41);
  assert.equal(v.idToByte[3], -1);
  assert.equal(v.hasByteFallback, false, 'one byte token is not a byte fallback');
  assert.deepEqual(Array.from(v.scores), [0, 0, 0, -1, 0, -2]);
  // Without scores and types: zeros and normal tokens; without <s>: no BOS, so add_bos must be false.
  const bare = new SpmVocab({ tokens: ['x', 'y'], addBos: false });
  assert.deepEqual(Array.from(bare.scores), [0, 0]);
  assert.deepEqual(Array.from(bare.types), [TokenType.normal, TokenType.normal]);
  assert.deepEqual([bare.bosId, bare.eosId, bare.unkId], [-1, -1, -1]);
});

test('explicit ids and flags are taken as given; numbers may be bigints; -1 means none', () => {
  const m = base();
  m.set('tokenizer.ggml.bos_token_id', 2n);
  m.set('tokenizer.ggml.eos_token_id', 1);
  m.set('tokenizer.ggml.unknown_token_id', -1);
  m.set('tokenizer.ggml.padding_token_id', 5);
  m.set('tokenizer.ggml.add_bos_token', false);
  m.set('tokenizer.ggml.add_eos_token', true);
  m.set('tokenizer.ggml.add_space_prefix', false);
  const v = vocabFromMetadata(m);
  assert.deepEqual([v.bosId, v.eosId, v.unkId, v.padId], [2, 1, -1, 5]);
  assert.deepEqual([v.addBos, v.addEos, v.addSpacePrefix], [false, true, false]);
});

test('a byte token for every byte is a byte fallback; the first of two byte tokens for a byte wins', () => {
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const tokens = ['<unk>', '<s>', ...bytes, '<0x0a>'];
  const v = new SpmVocab({ tokens, types: [2, 3, ...bytes.map(() => 6), 6] });
  assert.equal(v.hasByteFallback, true);
  assert.equal(v.byteToId[10], 2 + 10);
  assert.equal(v.idToByte[tokens.length - 1], 10, 'lower-case hex digits read too');
});

test('malformed tokenizer keys are refused, naming the key', () => {
  refused((m) => m.set('tokenizer.ggml.tokens', []), 'tokenizer.ggml.tokens is empty');
  refused((m) => m.set('tokenizer.ggml.tokens', ['a', 3]), 'tokenizer.ggml.tokens[1] is not a string');
  refused((m) => m.set('tokenizer.ggml.token_type', [2, 3, 3]), 'tokenizer.ggml.token_type has 3 entries, expected 6');
  refused((m) => m.set('tokenizer.ggml.scores', [0, 0, 0, 0, 0, 0, 0]), 'tokenizer.ggml.scores has 7 entries, expected 6');
  for (const t of [0, 7, 1.5]) {
    refused((m) => m.set('tokenizer.ggml.token_type', [2, 3, 3, t, 6, 1]), `tokenizer.ggml.token_type[3] = ${t} is not a known token type (1-6)`);
  }
  refused((m) => m.set('tokenizer.ggml.token_type', [2, 3, 3, 6, 6, 1]), 'byte token 3 has piece "a", expected <0xNN>');
  refused((m) => m.set('tokenizer.ggml.tokens', ['<unk>', '<s>', '</s>', 'a', '<0x4>', 'a']), 'byte token 4 has piece "<0x4>", expected <0xNN>');
  refused((m) => m.set('tokenizer.ggml.tokens', ['<unk>', '<s>', '</s>', 'a', ' <0x41>', 'a']), 'byte token 4 has piece " <0x41>", expected <0xNN>');
  refused((m) => m.set('tokenizer.ggml.tokens', ['<unk>', '<s>', '</s>', 'a', '<0x41> ', 'a']), 'byte token 4 has piece "<0x41> ", expected <0xNN>');
  refused((m) => m.set('tokenizer.ggml.eos_token_id', 6), 'tokenizer.ggml.eos_token_id = 6 is outside the vocabulary (0..5)');
  refused((m) => m.set('tokenizer.ggml.unknown_token_id', -2), 'tokenizer.ggml.unknown_token_id = -2 is outside the vocabulary (0..5)');
  refused((m) => m.set('tokenizer.ggml.padding_token_id', 1.5), 'tokenizer.ggml.padding_token_id = 1.5 is outside the vocabulary (0..5)');
  refused((m) => m.set('tokenizer.ggml.bos_token_id', '1'), 'tokenizer.ggml.bos_token_id must be a number, got string');
  refused((m) => m.set('tokenizer.ggml.add_eos_token', 'yes'), 'tokenizer.ggml.add_eos_token must be a boolean, got string');
  refused((m) => m.set('tokenizer.ggml.scores', 'x'), 'tokenizer.ggml.scores must be an array');
  refused((m) => m.set('tokenizer.ggml.token_type', [2, 3, 3, 1, '6', 1]), 'tokenizer.ggml.token_type[4] is not a number');
  refused((m) => m.set('tokenizer.ggml.model', 'gpt2'), 'tokenizer.ggml.model is "gpt2"; only "llama" (SentencePiece) is supported');
  refused((m) => m.delete('tokenizer.ggml.tokens'), 'tokenizer.ggml.tokens is missing or not an array');
  refused((m) => m.delete('tokenizer.ggml.model'), 'the model file has no tokenizer (tokenizer.ggml.model is missing)');
  // A BOS is added by default, so a vocabulary without one must say add_bos_token false.
  refused((m) => m.set('tokenizer.ggml.bos_token_id', -1), 'tokenizer.ggml.add_bos_token is set but there is no BOS token');
  assert.throws(() => new SpmVocab({ tokens: ['x'] }), /^TokenizerError: tokenizer\.ggml\.add_bos_token is set but there is no BOS token$/);
  assert.throws(() => new SpmVocab({ tokens: ['x', 5 as unknown as string], addBos: false }), /tokenizer\.ggml\.tokens\[1\] is not a string/);
});

test('id 0 is an id like any other: a byte token or BOS there counts; scores and token types are optional keys', () => {
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  // Bytes at ids 0..255, BOS after them, and a second <0x00> at the end (the first wins).
  const v = new SpmVocab({ tokens: [...bytes, '<s>', '<0x00>'], types: [...bytes.map(() => 6), 3, 6] });
  assert.equal(v.hasByteFallback, true);
  assert.equal(v.byteToId[0], 0);
  assert.equal(v.bosId, 256);
  const bos0 = new SpmVocab({ tokens: ['<s>', 'a'], types: [3, 1] });
  assert.deepEqual([bos0.bosId, bos0.addBos], [0, true]);
  const m = base();
  m.delete('tokenizer.ggml.scores');
  m.delete('tokenizer.ggml.token_type');
  const bare = vocabFromMetadata(m);
  assert.deepEqual(Array.from(bare.scores), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(bare.types), [1, 1, 1, 1, 1, 1]);
});
