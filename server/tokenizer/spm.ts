// The llama SentencePiece (BPE) tokenizer, rebuilt from GGUF metadata.
//
// Encoding follows sentencepiece's BPE model with llama's normaliser settings (identity
// rules, spaces -> U+2581, one dummy U+2581 in front, extra whitespace kept):
//   1. split the normalised text into characters, user-defined pieces kept whole;
//   2. repeatedly merge the adjacent pair whose concatenation is a piece with the highest
//      score (leftmost first on ties) until no pair is a piece;
//   3. emit each symbol's id; a symbol that is not a piece becomes its UTF-8 bytes as
//      <0xNN> tokens (byte fallback), or the unknown token if the vocab has no bytes.
// Control tokens (<s>, </s>) are never produced from text unless parseSpecial is set.
// Verified against sentencepiece itself by test/tokenizer (fixture from tools/spm-fixture).

import type { GgufValue } from '../engine/types.js';
import { MergeQueue } from './merge-queue.js';
import { StreamDecoder, type StreamDecoderOptions } from './stream-decoder.js';
import { SpmVocab, TokenType, TokenizerError, vocabFromMetadata } from './vocab.js';

export const SPACE = '\u2581';

export interface EncodeOptions {
  /** Prepend BOS (default: the file's tokenizer.ggml.add_bos_token, else true). */
  addBos?: boolean;
  /** Append EOS (default: tokenizer.ggml.add_eos_token, else false). */
  addEos?: boolean;
  /**
   * Turn special-token text such as "<s>" or "<unk>" into that token (for chat templates). Text
   * between special tokens is then encoded piece by piece, each piece with its own space
   * prefix, as llama.cpp does with parse_special. Off (default): exact sentencepiece.
   */
  parseSpecial?: boolean;
}

interface Special {
  piece: string;
  id: number;
}

/** Special pieces grouped by first UTF-16 unit, longest first, for prefix matching. */
function buildMatcher(vocab: SpmVocab, types: number[]): Map<number, Special[]> {
  const m = new Map<number, Special[]>();
  for (let id = 0; id < vocab.size; id++) {
    if (!types.includes(vocab.types[id])) continue;
    const piece = vocab.tokens[id];
    if (piece.length === 0 || vocab.pieceToId.get(piece) !== id) continue;
    const key = piece.charCodeAt(0);
    const list = m.get(key) ?? [];
    list.push({ piece, id });
    m.set(key, list);
  }
  for (const list of m.values()) list.sort((a, b) => b.piece.length - a.piece.length);
  return m;
}

function matchAt(m: Map<number, Special[]>, s: string, i: number): Special | undefined {
  const list = m.get(s.charCodeAt(i));
  if (!list) return undefined;
  for (const sp of list) if (s.startsWith(sp.piece, i)) return sp;
  return undefined;
}

const utf8 = new TextEncoder();

export class SpmTokenizer {
  readonly vocab: SpmVocab;
  /** Pieces merges may produce: normal, user-defined and unused ones (id and score). */
  private readonly mergeable = new Map<string, number>();
  private readonly userDefined: Map<number, Special[]>;
  private readonly special: Map<number, Special[]>;
  private readonly queue = new MergeQueue();
  // Symbol list of the text being encoded, reused between calls.
  private start = new Int32Array(256);
  private len = new Int32Array(256);
  private prev = new Int32Array(256);
  private next = new Int32Array(256);
  private fixed = new Int32Array(256);
  /** Unused pieces produced by a merge -> the two parts they came from. */
  private readonly revMerge = new Map<string, [string, string]>();

  constructor(vocab: SpmVocab) {
    this.vocab = vocab;
    for (let id = 0; id < vocab.size; id++) {
      const t = vocab.types[id];
      if (t !== TokenType.normal && t !== TokenType.userDefined && t !== TokenType.unused) continue;
      if (!this.mergeable.has(vocab.tokens[id])) this.mergeable.set(vocab.tokens[id], id);
    }
    this.userDefined = buildMatcher(vocab, [TokenType.userDefined]);
    // The tokens llama.cpp splits on with parse_special: control, user-defined, unknown.
    this.special = buildMatcher(vocab, [TokenType.userDefined, TokenType.control, TokenType.unknown]);
  }

  static fromMetadata(meta: Map<string, GgufValue>): SpmTokenizer {
    return new SpmTokenizer(vocabFromMetadata(meta));
  }

  get nVocab(): number {
    return this.vocab.size;
  }
  get bosId(): number {
    return this.vocab.bosId;
  }
  get eosId(): number {
    return this.vocab.eosId;
  }

  /** The piece as stored in the vocabulary (U+2581 for spaces, <0xNN> for bytes). */
  piece(id: number): string {
    this.checkId(id);
    return this.vocab.tokens[id];
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.size) {
      throw new TokenizerError(`token id ${id} is outside the vocabulary (0..${this.vocab.size - 1})`);
    }
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TokenizerError('encode: text must be a string');
    const v = this.vocab;
    const out: number[] = [];
    if (opts.addBos ?? v.addBos) {
      if (v.bosId < 0) throw new TokenizerError('encode: addBos requested but the vocabulary has no BOS token');
      out.push(v.bosId);
    }
    if (opts.parseSpecial) this.encodeWithSpecials(text, out);
    else if (text.length > 0) this.encodeNormalized(this.normalize(text, v.addSpacePrefix), out);
    if (opts.addEos ?? v.addEos) {
      if (v.eosId < 0) throw new TokenizerError('encode: addEos requested but the vocabulary has no EOS token');
      out.push(v.eosId);
    }
    return out;
  }

  private normalize(text: string, prefix: boolean): string {
    const s = text.replaceAll(' ', SPACE);
    return prefix ? SPACE + s : s;
  }

  private encodeWithSpecials(text: string, out: number[]): void {
    let segStart = 0;
    let prevSpecial = true;
    const flush = (end: number): void => {
      if (end > segStart) {
        const seg = text.slice(segStart, end);
        this.encodeNormalized(this.normalize(seg, this.vocab.addSpacePrefix && prevSpecial), out);
        prevSpecial = false;
      }
    };
    for (let i = 0; i < text.length; ) {
      const sp = matchAt(this.special, text, i);
      if (!sp) {
        i++;
        continue;
      }
      flush(i);
      out.push(sp.id);
      prevSpecial = true;
      i += sp.piece.length;
      segStart = i;
    }
    flush(text.length);
  }

  private ensureSymbols(n: number): void {
    if (n <= this.start.length) return;
    let cap = this.start.length;
    while (cap < n) cap *= 2;
    this.start = new Int32Array(cap);
    this.len = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.fixed = new Int32Array(cap);
  }

  /** Queue the merge of symbols l and r if their concatenation is a piece. */
  private tryPair(norm: string, l: number, r: number): void {
    if (l < 0 || r < 0 || this.fixed[l] >= 0 || this.fixed[r] >= 0) return;
    const size = this.len[l] + this.len[r];
    const piece = norm.substr(this.start[l], size);
    const id = this.mergeable.get(piece);
    if (id === undefined) return;
    this.queue.push(this.vocab.scores[id], l, r, size);
    if (this.vocab.types[id] === TokenType.unused && !this.revMerge.has(piece)) {
      this.revMerge.set(piece, [norm.substr(this.start[l], this.len[l]), norm.substr(this.start[r], this.len[r])]);
    }
  }

  /** BPE over one normalised string, appending ids to out. */
  private encodeNormalized(norm: string, out: number[]): void {
    this.ensureSymbols(norm.length);
    const { start, len, prev, next, fixed } = this;
    let n = 0;
    for (let i = 0; i < norm.length; n++) {
      const ud = this.userDefined.size > 0 ? matchAt(this.userDefined, norm, i) : undefined;
      let l: number;
      if (ud) {
        l = ud.piece.length;
        fixed[n] = ud.id;
      } else {
        const c = norm.charCodeAt(i);
        l = c >= 0xd800 && c <= 0xdbff && i + 1 < norm.length && (norm.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
        fixed[n] = -1;
      }
      start[n] = i;
      len[n] = l;
      prev[n] = n - 1;
      next[n] = n + 1;
      i += l;
    }
    if (n === 0) return;
    next[n - 1] = -1;

    const q = this.queue;
    q.clear();
    for (let i = 0; i + 1 < n; i++) this.tryPair(norm, i, i + 1);
    while (q.length > 0) {
      q.pop();
      const l = q.topLeft;
      const r = q.topRight;
      // Stale entry: one side was merged away or grew since it was queued.
      if (len[l] === 0 || len[r] === 0 || len[l] + len[r] !== q.topSize) continue;
      len[l] += len[r];
      len[r] = 0;
      next[l] = next[r];
      if (next[r] >= 0) prev[next[r]] = l;
      this.tryPair(norm, prev[l], l);
      this.tryPair(norm, l, next[l]);
    }

    let prevUnk = false;
    for (let i = 0; i !== -1; i = next[i]) {
      if (fixed[i] >= 0) {
        out.push(fixed[i]);
        prevUnk = false;
        continue;
      }
      prevUnk = this.emitPiece(norm.substr(start[i], len[i]), out, prevUnk);
    }
  }

  /** Emit one final symbol; returns whether it ended as the unknown token. */
  private emitPiece(piece: string, out: number[], prevUnk: boolean): boolean {
    const v = this.vocab;
    // A merged piece is the mergeable entry it was merged as: where a vocabulary lists the
    // same text twice (say "<s>" as control and again as a normal piece), text must not
    // turn into the control token.
    const id = this.mergeable.get(piece) ?? v.pieceToId.get(piece);
    if (id !== undefined && id !== v.unkId) {
      if (v.types[id] === TokenType.unused) {
        // sentencepiece never outputs unused pieces: split back into what was merged.
        const parts = this.revMerge.get(piece);
        if (parts) {
          const u = this.emitPiece(parts[0], out, prevUnk);
          return this.emitPiece(parts[1], out, u);
        }
      }
      out.push(id);
      return false;
    }
    if (v.hasByteFallback) {
      for (const b of utf8.encode(piece)) out.push(v.byteToId[b]);
      return false;
    }
    if (v.unkId < 0) throw new TokenizerError(`cannot encode ${JSON.stringify(piece)}: no byte tokens and no unknown token`);
    // Without byte fallback sentencepiece folds a run of unknown characters into one.
    if (!prevUnk) out.push(v.unkId);
    return true;
  }

  /** Text of a token sequence (control tokens give none, byte tokens are joined as UTF-8). */
  decode(ids: ArrayLike<number>, opts: StreamDecoderOptions = {}): string {
    const d = this.streamDecoder(opts);
    let s = '';
    for (let i = 0; i < ids.length; i++) s += d.push(ids[i]);
    return s + d.flush();
  }

  /** Incremental decoder for streaming output: push(id) returns only complete characters. */
  streamDecoder(opts: StreamDecoderOptions = {}): StreamDecoder {
    return new StreamDecoder(this.vocab, opts);
  }

  /** The UTF-8 bytes one token stands for (spaces for U+2581; OpenAI logprobs `bytes`). */
  tokenBytes(id: number): Uint8Array {
    this.checkId(id);
    const b = this.vocab.idToByte[id];
    if (b >= 0) return Uint8Array.of(b);
    const t = this.vocab.types[id];
    if (t === TokenType.control) return new Uint8Array(0);
    if (t === TokenType.unknown) return utf8.encode(' \u2047 ');
    return utf8.encode(this.vocab.tokens[id].replaceAll(SPACE, ' '));
  }
}
