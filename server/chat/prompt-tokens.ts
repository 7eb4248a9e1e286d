// Text -> prompt tokens with a cheap size check first, shared by the HTTP routes (inline)
// and the text worker (text-worker-thread.ts). A token never stands for more than
// `maxTokenBytes` bytes of input, so a text of B bytes has at least B / maxTokenBytes
// tokens: a prompt that cannot fit the context is refused without tokenising it (a
// 1 MB prompt took 1.7 s to tokenise before the context check refused it).

import type { ChatMessage } from '../http/validate.js';
import type { RuntimeTokenizer } from '../scheduler/runtime.js';
import type { ChatTemplate, RenderOptions } from './template.js';

/** tokens, or (when the text cannot fit `limit` tokens) a lower bound on its count. */
export type TokensOrBound = { tokens: number[] } | { atLeast: number };

const utf8 = new TextEncoder();

export function tokenLowerBound(text: string, maxTokenBytes: number | undefined): number {
  if (!maxTokenBytes || maxTokenBytes <= 0) return 0;
  // Bytes are at least the UTF-16 length / 2 ... but exact bytes are cheap next to tokenising.
  return Math.ceil(utf8.encode(text).length / maxTokenBytes);
}

export function encodeWithin(tok: RuntimeTokenizer, text: string, addBos: boolean, special: boolean, limit: number | null): TokensOrBound {
  if (limit !== null) {
    const atLeast = tokenLowerBound(text, tok.maxTokenBytes) + (addBos ? 1 : 0);
    if (atLeast >= limit) return { atLeast };
  }
  return { tokens: tok.encode(text, addBos, special) };
}

/** The rendered conversation; a BOS the template wrote as text is folded into the BOS token. */
export function chatText(template: Pick<ChatTemplate, 'render'>, tok: RuntimeTokenizer, messages: readonly ChatMessage[], opts: RenderOptions = {}): { text: string; addBos: boolean } {
  let text = template.render(messages, opts);
  let addBos = tok.addBos;
  if (tok.bosText && text.startsWith(tok.bosText)) {
    text = text.slice(tok.bosText.length);
    addBos = true;
  }
  return { text, addBos };
}

/** The longest input, in bytes, one token may stand for (see the top of this file). */
export function maxTokenBytes(pieces: readonly string[]): number {
  // An unknown character becomes one <unk> token: up to 4 bytes.
  let max = 4;
  for (const p of pieces) {
    // Pieces store spaces as U+2581 (3 bytes for 1): an over-estimate keeps the bound safe.
    if (p.length * 3 > max) max = Math.max(max, utf8.encode(p).length);
  }
  return max;
}
