// test-runner: alone (it times encoding and decoding)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpmTokenizer } from '../../server/tokenizer/spm.js';
import { fixtureCases, fixtureMetadata } from './fixture.js';

const tok = SpmTokenizer.fromMetadata(fixtureMetadata());

test('encode matches sentencepiece on every fixture string', () => {
  assert.ok(fixtureCases.encode.length >= 180); // 36 chosen + 150 seeded random strings
  for (const c of fixtureCases.encode) {
    assert.deepEqual(tok.encode(c.text, { addBos: false }), c.ids, `encode(${JSON.stringify(c.text)})`);
  }
});

test('decode(encode(s)) == s, and matches sentencepiece decode', () => {
  let roundTrips = 0;
  for (const c of fixtureCases.encode) {
    const ids = tok.encode(c.text, { addBos: false });
    assert.equal(tok.decode(ids), c.decoded, `decode of ${JSON.stringify(c.text)}`);
    // A literal U+2581 in the input reads back as a space (as in sentencepiece).
    if (!c.text.includes('\u2581')) {
      assert.equal(tok.decode(ids), c.text);
      roundTrips++;
    }
  }
  assert.ok(roundTrips > 150);
});

test('decode matches sentencepiece on control, unknown and broken byte sequences', () => {
  for (const c of fixtureCases.decode) {
    assert.equal(tok.decode(c.ids), c.text, `decode(${JSON.stringify(c.ids)})`);
  }
});

test('BOS/EOS are added as the metadata or the caller says', () => {
  const ids = tok.encode('Hello world', { addBos: false });
  assert.deepEqual(tok.encode('Hello world'), [1, ...ids]);
  assert.deepEqual(tok.encode('Hello world', { addEos: true }), [1, ...ids, 2]);
  assert.deepEqual(tok.encode(''), [1]);
  assert.deepEqual(tok.encode('', { addBos: false }), []);
});

test('streaming decode equals whole decode, token by token, on every case', () => {
  for (const c of fixtureCases.encode) {
    const ids = [1, ...c.ids, 2];
    const d = tok.streamDecoder();
    let s = '';
    for (const id of ids) {
      const part = d.push(id);
      // Never a broken character in the middle of a stream.
      assert.ok(!/[\ud800-\udbff]$/.test(part) && !part.includes('\ufffd'), `partial output ${JSON.stringify(part)}`);
      s += part;
    }
    s += d.flush();
    assert.equal(s, c.decoded);
  }
});

test('streaming holds back emoji and CJK bytes until the character is complete', () => {
  // Characters outside the vocabulary: each is spelled with 3 or 4 byte tokens.
  for (const ch of ['😀', '👍🏽', '한', '語']) {
    const ids = tok.encode(`a${ch}b`, { addBos: false });
    const d = tok.streamDecoder();
    const parts = ids.map((id) => d.push(id));
    const bytes = new TextEncoder().encode(ch).length;
    assert.ok(ids.length >= bytes, `${ch} should use byte fallback`);
    assert.equal(parts.join('') + d.flush(), `a${ch}b`);
    // The character appears whole, in exactly one push, together with nothing broken.
    const holder = parts.filter((p) => p.includes([...ch][0]));
    assert.equal(holder.length, 1);
    assert.ok(parts.filter((p) => p === '').length >= 2, 'leading bytes of a character emit nothing');
  }
  // A dangling lead byte at the end of the stream is flushed as U+FFFD.
  const d = tok.streamDecoder();
  const e4 = tok.vocab.byteToId[0xe4];
  assert.equal(d.push(e4), '');
  assert.equal(d.hasPending, true);
  assert.equal(d.flush(), '\ufffd');
});

test('parseSpecial turns control-token text into tokens, llama.cpp style', () => {
  const hello = tok.encode('Hello', { addBos: false });
  assert.deepEqual(tok.encode('<s>Hello</s>', { addBos: false, parseSpecial: true }), [1, ...hello, 2]);
  // Without it, "<s>" is plain text (bytes and letters), as sentencepiece does.
  assert.ok(!tok.encode('<s>Hello</s>', { addBos: false }).includes(1));
  // Text after a special token gets its own space prefix.
  const a = tok.encode('<|user|>Hello', { addBos: false, parseSpecial: true });
  assert.deepEqual(a, [3, ...hello]);
  assert.deepEqual(tok.encode('<unk>', { addBos: false, parseSpecial: true }), [0]);
  // Plain text keeps sentencepiece's single dummy prefix; each segment gets one here.
  const seg = tok.encode(' world', { addBos: false });
  assert.deepEqual(tok.encode('Hello</s> world', { addBos: false, parseSpecial: true }), [...hello, 2, ...seg]);
});

test('renderSpecial decodes control tokens as their pieces', () => {
  const ids = tok.encode('Hi', { addEos: true });
  assert.equal(tok.decode(ids, { renderSpecial: true }), '<s>Hi</s>');
  assert.equal(tok.decode(ids), 'Hi');
});

test('tokenBytes gives the bytes a token stands for', () => {
  assert.deepEqual([...tok.tokenBytes(tok.vocab.byteToId[0x0a])], [0x0a]);
  assert.deepEqual(Buffer.from(tok.tokenBytes(1180)).toString(), ' world');
  assert.equal(tok.tokenBytes(1).length, 0);
  assert.throws(() => tok.tokenBytes(4000), /token id 4000 is outside the vocabulary/);
});

// Mutation runs (npm run mutate) instrument every line, so times there say nothing.
const untimed = process.env.RELU_SERVE_UNTIMED ? 'timing is meaningless in an instrumented mutation run' : false;

test('encoding a 4k-token prompt takes a few milliseconds', { skip: untimed }, () => {
  const para = fixtureCases.encode.find((c) => c.text.startsWith('In the beginning God created') && c.text.length > 300)!.text;
  let text = '';
  while (tok.encode(text, { addBos: false }).length < 4096) text += para + '\n';
  const n = tok.encode(text, { addBos: false }).length;
  const reps = 20;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) tok.encode(text, { addBos: false });
  const ms = (performance.now() - t0) / reps;
  console.log(`# encode: ${n} tokens (${text.length} chars) in ${ms.toFixed(2)} ms`);
  assert.ok(ms < 40, `encode took ${ms} ms`);
  const ids = tok.encode(text, { addBos: false });
  const t1 = performance.now();
  for (let i = 0; i < reps; i++) tok.decode(ids);
  const dms = (performance.now() - t1) / reps;
  console.log(`# decode: ${ids.length} tokens in ${dms.toFixed(2)} ms`);
  assert.equal(tok.decode(ids), text);
});

test('a continuation stream keeps the first token\'s leading space', () => {
  const ids = tok.encode('Hello world', { addBos: false });
  const tail = ids.slice(3); // "▁world"
  assert.equal(tok.decode(tail), 'world');
  assert.equal(tok.decode(tail, { continuation: true }), ' world');
  const d = tok.streamDecoder({ continuation: true });
  assert.equal(tail.map((id) => d.push(id)).join('') + d.flush(), ' world');
});
