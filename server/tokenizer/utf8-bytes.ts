// Incremental UTF-8 decoding of byte-fallback tokens, with sentencepiece's error rule:
// a byte that does not start a complete, valid sequence becomes one U+FFFD on its own
// and decoding resumes at the next byte. (The WHATWG TextDecoder would instead merge a
// truncated sequence into a single U+FFFD, which would differ from sentencepiece.)

const REPLACEMENT = '\ufffd';

/** Length of the sequence a lead byte starts; 0 if it cannot start one. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead < 0xc2) return 0; // continuation bytes and the overlong C0/C1
  if (lead < 0xe0) return 2;
  if (lead < 0xf0) return 3;
  if (lead < 0xf5) return 4;
  return 0;
}

/** Is `b` acceptable as byte number k (1-based after the lead) of a sequence? */
function validFollower(lead: number, k: number, b: number): boolean {
  if (k === 1) {
    // Ranges that exclude overlong forms, surrogates and code points above U+10FFFF.
    if (lead === 0xe0) return b >= 0xa0 && b <= 0xbf;
    if (lead === 0xed) return b >= 0x80 && b <= 0x9f;
    if (lead === 0xf0) return b >= 0x90 && b <= 0xbf;
    if (lead === 0xf4) return b >= 0x80 && b <= 0x8f;
  }
  return b >= 0x80 && b <= 0xbf;
}

export class Utf8ByteStream {
  private readonly pending = new Uint8Array(4);
  private n = 0;

  /** Bytes held back waiting for the rest of a character. */
  get pendingBytes(): number {
    return this.n;
  }

  /** Add one byte; returns whatever text is now complete ('' if none). */
  push(byte: number): string {
    this.pending[this.n++] = byte;
    return this.drain(false);
  }

  /** End of the byte run: any held-back bytes become U+FFFD each. */
  flush(): string {
    return this.n === 0 ? '' : this.drain(true);
  }

  private shift(k: number): void {
    this.pending.copyWithin(0, k, this.n);
    this.n -= k;
  }

  private drain(final: boolean): string {
    let out = '';
    while (this.n > 0) {
      const lead = this.pending[0];
      const need = sequenceLength(lead);
      if (need === 1) {
        out += String.fromCharCode(lead);
        this.shift(1);
        continue;
      }
      let ok = need > 0;
      for (let k = 1; ok && k < Math.min(this.n, need); k++) ok = validFollower(lead, k, this.pending[k]);
      if (!ok || (this.n < need && final)) {
        out += REPLACEMENT;
        this.shift(1);
        continue;
      }
      if (this.n < need) break; // a valid prefix: wait for more bytes
      let cp = lead & (0xff >> (need + 1));
      for (let k = 1; k < need; k++) cp = (cp << 6) | (this.pending[k] & 0x3f);
      out += String.fromCodePoint(cp);
      this.shift(need);
    }
    return out;
  }
}
