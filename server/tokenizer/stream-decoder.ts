// Token-by-token detokeniser for streaming. push(id) returns the text that is now
// final: a character spelled by several byte tokens (emoji, CJK via byte fallback) is
// held back until its last byte arrives. Output concatenated over a sequence equals
// sentencepiece's decode of the whole sequence:
//   - control tokens (BOS/EOS) give no text;
//   - the first non-control token loses one leading U+2581 (the dummy prefix);
//   - U+2581 becomes a space; the unknown token reads " \u2047 ";
//   - invalid or truncated byte sequences give one U+FFFD per byte.
// Each push is O(length of the token's text).

import { Utf8ByteStream } from './utf8-bytes.js';
import { SpmVocab, TokenType, TokenizerError } from './vocab.js';

export interface StreamDecoderOptions {
  /** Render control tokens as their piece text (e.g. "</s>") instead of nothing. */
  renderSpecial?: boolean;
  /**
   * The tokens continue text decoded earlier (a completion after its prompt): keep the
   * first token's leading space instead of dropping it as the dummy prefix.
   */
  continuation?: boolean;
}

const UNK_TEXT = ' \u2047 ';

/** Per-vocabulary cache of each token's text (U+2581 already replaced). */
const textCache = new WeakMap<SpmVocab, (string | undefined)[]>();

function tokenText(vocab: SpmVocab, id: number): string {
  let cache = textCache.get(vocab);
  if (!cache) {
    cache = new Array(vocab.size);
    textCache.set(vocab, cache);
  }
  let t = cache[id];
  if (t === undefined) {
    t = vocab.types[id] === TokenType.unknown ? UNK_TEXT : vocab.tokens[id].replaceAll('\u2581', ' ');
    cache[id] = t;
  }
  return t;
}

export class StreamDecoder {
  private readonly bytes = new Utf8ByteStream();
  private atStart: boolean;

  constructor(
    private readonly vocab: SpmVocab,
    private readonly opts: StreamDecoderOptions = {},
  ) {
    this.atStart = !opts.continuation;
  }

  /** True while bytes of an unfinished character are held back. */
  get hasPending(): boolean {
    return this.bytes.pendingBytes > 0;
  }

  push(id: number): string {
    const v = this.vocab;
    if (!Number.isInteger(id) || id < 0 || id >= v.size) {
      throw new TokenizerError(`token id ${id} is outside the vocabulary (0..${v.size - 1})`);
    }
    const b = v.idToByte[id];
    if (b >= 0) {
      this.atStart = false;
      return this.bytes.push(b);
    }
    const type = v.types[id];
    if (type === TokenType.control) {
      return this.opts.renderSpecial ? this.bytes.flush() + v.tokens[id] : '';
    }
    let text = tokenText(v, id);
    if (this.atStart) {
      this.atStart = false;
      if (v.addSpacePrefix && type !== TokenType.unknown && v.tokens[id].startsWith('\u2581')) {
        text = text.slice(1);
      }
    }
    return this.bytes.pendingBytes > 0 ? this.bytes.flush() + text : text;
  }

  /** End of the sequence: whatever bytes are still held back become U+FFFD each. */
  flush(): string {
    return this.bytes.flush();
  }
}
