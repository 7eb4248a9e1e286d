// The SentencePiece vocabulary as GGUF stores it (`tokenizer.ggml.*` keys), checked and
// indexed for the encoder and decoder.

import type { GgufValue } from '../engine/types.js';

/** tokenizer.ggml.token_type values (the same numbering as sentencepiece's piece types). */
export const TokenType = {
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;

export interface SpmVocabData {
  tokens: string[];
  scores?: ArrayLike<number>;
  types?: ArrayLike<number>;
  bosId?: number;
  eosId?: number;
  unkId?: number;
  padId?: number;
  addBos?: boolean;
  addEos?: boolean;
  addSpacePrefix?: boolean;
}

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}

export class SpmVocab {
  readonly tokens: string[];
  readonly scores: Float32Array;
  readonly types: Uint8Array;
  readonly bosId: number;
  readonly eosId: number;
  /** -1 when the vocabulary has no unknown token. */
  readonly unkId: number;
  /** -1 when absent. */
  readonly padId: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  /** Every piece -> its id (the first id where a piece repeats). */
  readonly pieceToId = new Map<string, number>();
  /** byte value -> id of its `<0xNN>` token, -1 where missing. */
  readonly byteToId = new Int32Array(256).fill(-1);
  /** id -> byte value for byte tokens, -1 otherwise. */
  readonly idToByte: Int16Array;
  readonly hasByteFallback: boolean;

  constructor(d: SpmVocabData) {
    const n = d.tokens.length;
    if (n === 0) throw new TokenizerError('tokenizer.ggml.tokens is empty');
    this.tokens = d.tokens;
    if (d.scores && d.scores.length !== n) {
      throw new TokenizerError(`tokenizer.ggml.scores has ${d.scores.length} entries, expected ${n}`);
    }
    if (d.types && d.types.length !== n) {
      throw new TokenizerError(`tokenizer.ggml.token_type has ${d.types.length} entries, expected ${n}`);
    }
    this.scores = new Float32Array(n);
    if (d.scores) this.scores.set(d.scores);
    this.types = new Uint8Array(n).fill(TokenType.normal);
    if (d.types) {
      for (let i = 0; i < n; i++) {
        const t = d.types[i];
        if (!Number.isInteger(t) || t < 1 || t > 6) {
          throw new TokenizerError(`tokenizer.ggml.token_type[${i}] = ${t} is not a known token type (1-6)`);
        }
        this.types[i] = t;
      }
    }
    this.idToByte = new Int16Array(n).fill(-1);
    for (let i = 0; i < n; i++) {
      const piece = this.tokens[i];
      if (typeof piece !== 'string') throw new TokenizerError(`tokenizer.ggml.tokens[${i}] is not a string`);
      if (!this.pieceToId.has(piece)) this.pieceToId.set(piece, i);
      if (this.types[i] === TokenType.byte) {
        const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
        if (!m) throw new TokenizerError(`byte token ${i} has piece ${JSON.stringify(piece)}, expected <0xNN>`);
        const b = parseInt(m[1], 16);
        this.idToByte[i] = b;
        if (this.byteToId[b] < 0) this.byteToId[b] = i;
      }
    }
    this.hasByteFallback = this.byteToId.every((id) => id >= 0);

    const checkId = (v: number | undefined, key: string, fallback: number): number => {
      if (v === undefined) return fallback;
      if (!Number.isInteger(v) || v < -1 || v >= n) {
        throw new TokenizerError(`tokenizer.ggml.${key} = ${v} is outside the vocabulary (0..${n - 1})`);
      }
      return v;
    };
    const firstOfType = (t: number): number => this.types.indexOf(t);
    this.unkId = checkId(d.unkId, 'unknown_token_id', firstOfType(TokenType.unknown));
    this.bosId = checkId(d.bosId, 'bos_token_id', this.pieceToId.get('<s>') ?? -1);
    this.eosId = checkId(d.eosId, 'eos_token_id', this.pieceToId.get('</s>') ?? -1);
    this.padId = checkId(d.padId, 'padding_token_id', -1);
    this.addBos = d.addBos ?? true;
    this.addEos = d.addEos ?? false;
    this.addSpacePrefix = d.addSpacePrefix ?? true;
    if (this.addBos && this.bosId < 0) {
      throw new TokenizerError('tokenizer.ggml.add_bos_token is set but there is no BOS token');
    }
  }

  get size(): number {
    return this.tokens.length;
  }
}

function num(meta: Map<string, GgufValue>, key: string): number | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  throw new TokenizerError(`${key} must be a number, got ${typeof v}`);
}

function bool(meta: Map<string, GgufValue>, key: string): boolean | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v === 'boolean') return v;
  throw new TokenizerError(`${key} must be a boolean, got ${typeof v}`);
}

function numArray(meta: Map<string, GgufValue>, key: string): number[] | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new TokenizerError(`${key} must be an array`);
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== 'number') throw new TokenizerError(`${key}[${i}] is not a number`);
  }
  return v as number[];
}

/** Read the `tokenizer.ggml.*` keys of a GGUF file (as the engine's metadata map). */
export function vocabFromMetadata(meta: Map<string, GgufValue>): SpmVocab {
  const model = meta.get('tokenizer.ggml.model');
  if (model === undefined) throw new TokenizerError('the model file has no tokenizer (tokenizer.ggml.model is missing)');
  if (model !== 'llama') {
    throw new TokenizerError(
      `tokenizer.ggml.model is ${JSON.stringify(model)}; only "llama" (SentencePiece) is supported`,
    );
  }
  const tokens = meta.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens)) throw new TokenizerError('tokenizer.ggml.tokens is missing or not an array');
  for (let i = 0; i < tokens.length; i++) {
    if (typeof tokens[i] !== 'string') throw new TokenizerError(`tokenizer.ggml.tokens[${i}] is not a string`);
  }
  return new SpmVocab({
    tokens: tokens as string[],
    scores: numArray(meta, 'tokenizer.ggml.scores'),
    types: numArray(meta, 'tokenizer.ggml.token_type'),
    bosId: num(meta, 'tokenizer.ggml.bos_token_id'),
    eosId: num(meta, 'tokenizer.ggml.eos_token_id'),
    unkId: num(meta, 'tokenizer.ggml.unknown_token_id'),
    padId: num(meta, 'tokenizer.ggml.padding_token_id'),
    addBos: bool(meta, 'tokenizer.ggml.add_bos_token'),
    addEos: bool(meta, 'tokenizer.ggml.add_eos_token'),
    addSpacePrefix: bool(meta, 'tokenizer.ggml.add_space_prefix'),
  });
}
