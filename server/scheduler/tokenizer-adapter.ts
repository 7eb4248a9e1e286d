// The SentencePiece tokenizer (server/tokenizer) seen through the RuntimeTokenizer
// interface the HTTP layer uses.

import { SpmTokenizer } from '../tokenizer/spm.js';
import { TokenType } from '../tokenizer/vocab.js';
import type { GgufValue } from '../engine/types.js';
import type { RuntimeTokenizer, TextStream } from './runtime.js';
import { maxTokenBytes } from '../chat/prompt-tokens.js';

export function adaptTokenizer(tok: SpmTokenizer, meta: Map<string, GgufValue>): RuntimeTokenizer {
  const v = tok.vocab;
  const ends = new Set<number>();
  if (v.eosId >= 0) ends.add(v.eosId);
  const eot = meta.get('tokenizer.ggml.eot_token_id');
  if (typeof eot === 'number' && eot >= 0 && eot < v.size) ends.add(eot);
  // The stream decoder drops the leading space of the first token it sees. A completion
  // continues its prompt, so it is primed with one plain token without a leading space,
  // whose own text is thrown away, to keep the first generated token's space.
  let primer = -1;
  for (let id = 0; id < v.size && primer < 0; id++) {
    if (v.types[id] === TokenType.normal && v.idToByte[id] < 0 && !v.tokens[id].startsWith('\u2581') && v.tokens[id].length > 0) primer = id;
  }
  const bosText = v.bosId >= 0 ? v.tokens[v.bosId] : '';
  const eosText = v.eosId >= 0 ? v.tokens[v.eosId] : '';
  return {
    nVocab: v.size,
    encode: (text, addBos, special = false) => tok.encode(text, { addBos, addEos: false, parseSpecial: special }),
    decode: (ids) => tok.decode(ids),
    stream: (continuation): TextStream => {
      const d = tok.streamDecoder();
      if (continuation && primer >= 0) d.push(primer);
      return { push: (id) => d.push(id), flush: () => d.flush() };
    },
    tokenBytes: (id) => tok.tokenBytes(id),
    eosId: v.eosId,
    isEndToken: (id) => ends.has(id),
    bosText,
    eosText,
    addBos: v.addBos,
    maxTokenBytes: maxTokenBytes(v.tokens),
  };
}
