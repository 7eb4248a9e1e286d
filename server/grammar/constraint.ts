// Token-level grammar constraint for sampling: before each draw, every token whose text
// the grammar cannot take next gets -Infinity, so whatever the sampler picks keeps the
// output inside the grammar (end tokens only where the grammar is complete).
//
// Cost: the allowed set depends only on the grammar state, and generation revisits the
// same few states (inside a string, after a comma, ...), so masks are cached per state;
// a miss walks a trie of the vocabulary's texts once, trying each shared prefix once.
// A hit costs one pass over the vocabulary to apply the mask.
//
// Tokens whose bytes are not whole UTF-8 characters (byte-fallback pieces) and control
// tokens are never allowed under a grammar: characters are matched whole.

import { Matcher, type GrammarState } from './matcher.js';

export interface ConstraintVocab {
  /** Per token: its text as code points, or null when it can never be produced under a grammar. */
  pieces: (Int32Array | null)[];
  isEnd(token: number): boolean;
  trie: TrieNode;
}

interface TrieNode {
  children: Map<number, TrieNode>;
  tokens: number[];
}

/** Builds the vocabulary view once per tokenizer. */
export function buildVocab(nVocab: number, bytesOf: (t: number) => Uint8Array, isEnd: (t: number) => boolean): ConstraintVocab {
  const dec = new TextDecoder('utf-8', { fatal: true });
  const pieces: (Int32Array | null)[] = [];
  const trie: TrieNode = { children: new Map(), tokens: [] };
  for (let t = 0; t < nVocab; t++) {
    let cps: Int32Array | null = null;
    const b = bytesOf(t);
    if (b.length > 0 && !isEnd(t)) {
      try {
        cps = Int32Array.from([...dec.decode(b)].map((c) => c.codePointAt(0)!));
      } catch {
        cps = null;
      }
    }
    pieces.push(cps);
    if (!cps) continue;
    let node = trie;
    for (const cp of cps) {
      let next = node.children.get(cp);
      if (!next) node.children.set(cp, (next = { children: new Map(), tokens: [] }));
      node = next;
    }
    node.tokens.push(t);
  }
  return { pieces, isEnd, trie };
}

const MASK_CACHE = 512;

/** One sequence's constraint: the grammar state so far and the masks seen. */
export class GrammarConstraint {
  private state: GrammarState;
  private readonly masks: Map<string, Uint8Array>;

  /**
   * stripFirstSpace: the reply's first token is shown without its leading space (a chat
   * reply starts fresh), so the grammar sees it that way too.
   */
  constructor(private readonly matcher: Matcher, private readonly vocab: ConstraintVocab, private stripFirstSpace: boolean, masks?: Map<string, Uint8Array>) {
    this.state = matcher.initial;
    this.masks = masks ?? new Map();
  }

  /** Sets disallowed tokens' logits to -Infinity (in place). */
  apply(logits: Float32Array): void {
    const mask = this.mask();
    for (let t = 0; t < logits.length; t++) if (mask[t] === 0) logits[t] = -Infinity;
  }

  /** Moves the state past a sampled token; false if the token was not allowed. */
  accept(token: number): boolean {
    if (this.vocab.isEnd(token)) return this.matcher.accepting(this.state);
    let cps = this.vocab.pieces[token];
    if (!cps) return false;
    if (this.stripFirstSpace && cps.length > 0 && cps[0] === 0x20) cps = cps.subarray(1);
    const next = this.matcher.advanceAll(this.state, cps);
    if (!next) return false;
    this.state = next;
    this.stripFirstSpace = false;
    return true;
  }

  /** The grammar is complete and nothing can follow: only an end token fits. */
  get finished(): boolean {
    return this.matcher.finished(this.state);
  }

  private mask(): Uint8Array {
    const key = (this.stripFirstSpace ? 'first:' : '') + this.state.key;
    const hit = this.masks.get(key);
    if (hit) return hit;
    const n = this.vocab.pieces.length;
    const mask = new Uint8Array(n);
    if (this.matcher.accepting(this.state)) for (let t = 0; t < n; t++) if (this.vocab.isEnd(t)) mask[t] = 1;
    if (this.stripFirstSpace) {
      // Rare (the first token only): try every token with its leading space removed.
      for (let t = 0; t < n; t++) {
        let cps = this.vocab.pieces[t];
        if (!cps) continue;
        if (cps.length > 0 && cps[0] === 0x20) cps = cps.subarray(1);
        if (cps.length > 0 && this.matcher.advanceAll(this.state, cps)) mask[t] = 1;
      }
    } else {
      this.walk(this.vocab.trie, this.state, mask);
    }
    if (this.masks.size >= MASK_CACHE) this.masks.clear();
    this.masks.set(key, mask);
    return mask;
  }

  private walk(node: TrieNode, s: GrammarState, mask: Uint8Array): void {
    for (const [cp, child] of node.children) {
      const next = this.matcher.advance(s, cp);
      if (!next) continue;
      for (const t of child.tokens) mask[t] = 1;
      this.walk(child, next, mask);
    }
  }
}
