// Property tests for the byte-fallback UTF-8 stream: any text, fed as bytes one at a
// time, comes back unchanged; any byte string comes back as the reference reading of
// sentencepiece's rule (a byte that does not start a complete valid sequence is one
// U+FFFD on its own). The reference judges validity with TextDecoder in fatal mode.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import '../fc-seed.js';
import { Utf8ByteStream } from '../../server/tokenizer/utf8-bytes.js';

function feed(bytes: ArrayLike<number>): string {
  const s = new Utf8ByteStream();
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += s.push(bytes[i]);
  return out + s.flush();
}

function reference(bytes: Uint8Array): string {
  const fatal = new TextDecoder('utf-8', { fatal: true });
  const lengthOf = (b: number) => (b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0);
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const need = lengthOf(bytes[i]);
    if (need > 0 && i + need <= bytes.length) {
      try {
        out += fatal.decode(bytes.subarray(i, i + need));
        i += need;
        continue;
      } catch {
        /* not a valid sequence: one replacement for the lead byte */
      }
    }
    out += '\ufffd';
    i++;
  }
  return out;
}

test('any text round-trips when fed byte by byte', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 30 }), (text) => {
      assert.equal(feed(new TextEncoder().encode(text)), text);
    }),
    { numRuns: 1000 },
  );
});

test('text pieces split at any byte, with valid and broken sequences mixed, read as the reference says', () => {
  // Bytes biased towards lead and continuation bytes so truncated and overlong forms are common.
  const byteArb = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0x80, max: 0xbf }), fc.constantFrom(0xc0, 0xc2, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff));
  const chunkArb = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 4 }).map((s) => Array.from(new TextEncoder().encode(s))),
    fc.array(byteArb, { maxLength: 4 }),
  );
  fc.assert(
    fc.property(fc.array(chunkArb, { maxLength: 12 }), (chunks) => {
      const bytes = Uint8Array.from(chunks.flat());
      assert.equal(feed(bytes), reference(bytes));
    }),
    { numRuns: 2000 },
  );
});

test('a character is held back until its last byte and never emitted twice', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 10 }), (text) => {
      const bytes = new TextEncoder().encode(text);
      const s = new Utf8ByteStream();
      let out = '';
      for (const b of bytes) {
        out += s.push(b);
        // Whatever is out is a prefix of the text, and pending bytes stay under 4.
        assert.ok(text.startsWith(out));
        assert.ok(s.pendingBytes < 4);
      }
      assert.equal(s.pendingBytes, 0);
      assert.equal(out, text);
    }),
    { numRuns: 500 },
  );
});

test('every lead byte with every second byte (then valid continuations) reads as the reference says', () => {
  // The follower ranges of E0, ED, F0 and F4 end at single byte values; random bytes
  // seldom hit those edges, so all 65536 pairs are tried.
  for (let lead = 0; lead < 256; lead++) {
    for (let b1 = 0; b1 < 256; b1++) {
      for (const tail of [[], [0x80], [0x80, 0xbf]]) {
        const bytes = Uint8Array.of(lead, b1, ...tail);
        const got = feed(bytes);
        if (got !== reference(bytes)) assert.equal(got, reference(bytes), `bytes ${Array.from(bytes, (b) => b.toString(16))}`);
      }
    }
  }
});
