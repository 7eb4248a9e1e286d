// Token-level grammar constraint for sampling: before each draw, every token whose text
// the grammar cannot take next gets -Infinity, so whatever the sampler picks keeps the
// output inside the grammar (end tokens only where the grammar is complete).
//
// Cost: the allowed set depends only on the grammar state, and generation revisits the
// same few states (inside a string, after a comma, ...), so states are interned per
// grammar and each keeps its mask and the state each token leads to: in the steady state
// a token costs one Map lookup to accept and, to apply the mask, a pass over the shorter
// of the allowed and the disallowed lists (the allowed case blanks the row with a native
// fill first). A mask miss walks a trie of the vocabulary's texts once, trying each
// shared prefix once.
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

/** Interned grammar states per grammar kept at most (a new sequence starts over past this). */
const STATES_KEPT = 512;

/**
 * One grammar state as the constraint sees it: interned by key (plus whether the first
 * piece's leading space is dropped), so its mask and the states reached by each token
 * are computed once and then found by a property read and a Map lookup.
 */
interface StateEntry {
  readonly state: GrammarState;
  readonly first: boolean;
  /** Either the allowed ids (mode 'allow') or the disallowed ones ('ban'), whichever is shorter. */
  mask?: { mode: 'allow' | 'ban'; ids: Int32Array };
  /** token -> entry after it (null: not allowed). */
  readonly next: Map<number, StateEntry | null>;
}

/** The interned states of one compiled grammar, shared by all its sequences. */
export type StateTable = Map<string, StateEntry>;

let saved = new Float32Array(0);

/** One sequence's constraint: the grammar state so far. */
export class GrammarConstraint {
  private cur: StateEntry;

  /**
   * stripFirstSpace: the reply's first token is shown without its leading space (a chat
   * reply starts fresh), so the grammar sees it that way too.
   */
  constructor(private readonly matcher: Matcher, private readonly vocab: ConstraintVocab, stripFirstSpace: boolean, private readonly table: StateTable = new Map()) {
    this.cur = this.intern(matcher.initial, stripFirstSpace);
  }

  /** Sets disallowed tokens' logits to -Infinity (in place). */
  apply(logits: Float32Array): void {
    const e = this.cur;
    const m = e.mask ?? (e.mask = this.buildMask(e));
    const ids = m.ids;
    if (m.mode === 'ban') {
      for (let i = 0; i < ids.length; i++) logits[ids[i]] = -Infinity;
      return;
    }
    // Few allowed: keep their values, blank the row with a native fill, put them back.
    if (saved.length < ids.length) saved = new Float32Array(Math.max(ids.length, 2 * saved.length));
    for (let i = 0; i < ids.length; i++) saved[i] = logits[ids[i]];
    logits.fill(-Infinity);
    for (let i = 0; i < ids.length; i++) logits[ids[i]] = saved[i];
  }

  /** Moves the state past a sampled token; false if the token was not allowed. */
  accept(token: number): boolean {
    const e = this.cur;
    if (this.vocab.isEnd(token)) return this.matcher.accepting(e.state);
    let next = e.next.get(token);
    if (next === undefined) {
      next = this.step(e, token);
      e.next.set(token, next);
    }
    if (next === null) return false;
    this.cur = next;
    return true;
  }

  /** The grammar is complete and nothing can follow: only an end token fits. */
  get finished(): boolean {
    return this.matcher.finished(this.cur.state);
  }

  private step(e: StateEntry, token: number): StateEntry | null {
    let cps = this.vocab.pieces[token];
    if (!cps) return null;
    if (e.first && cps.length > 0 && cps[0] === 0x20) cps = cps.subarray(1);
    const s = this.matcher.advanceAll(e.state, cps);
    return s ? this.intern(s, false) : null;
  }

  private intern(state: GrammarState, first: boolean): StateEntry {
    const key = (first ? 'first:' : '') + state.key;
    let e = this.table.get(key);
    if (!e) {
      if (this.table.size >= STATES_KEPT) this.table.clear();
      e = { state, first, next: new Map() };
      this.table.set(key, e);
    }
    return e;
  }

  private buildMask(e: StateEntry): { mode: 'allow' | 'ban'; ids: Int32Array } {
    const n = this.vocab.pieces.length;
    const mask = new Uint8Array(n);
    if (this.matcher.accepting(e.state)) for (let t = 0; t < n; t++) if (this.vocab.isEnd(t)) mask[t] = 1;
    if (e.first) {
      // The reply's first piece is matched without its leading space: under the root's
      // space child the walk goes on from the same state (a lone space, empty once
      // stripped, stays out); every other child is walked as usual.
      for (const [cp, child] of this.vocab.trie.children) {
        if (cp === 0x20) this.walk(child, e.state, mask);
        else this.walkChild(cp, child, e.state, mask);
      }
    } else {
      this.walk(this.vocab.trie, e.state, mask);
    }
    let allowed = 0;
    for (let t = 0; t < n; t++) allowed += mask[t];
    const mode = allowed <= n - allowed ? 'allow' : 'ban';
    const want = mode === 'allow' ? 1 : 0;
    const ids = new Int32Array(mode === 'allow' ? allowed : n - allowed);
    for (let t = 0, k = 0; t < n; t++) if (mask[t] === want) ids[k++] = t;
    return { mode, ids };
  }

  private walk(node: TrieNode, s: GrammarState, mask: Uint8Array): void {
    for (const [cp, child] of node.children) this.walkChild(cp, child, s, mask);
  }

  private walkChild(cp: number, child: TrieNode, s: GrammarState, mask: Uint8Array): void {
    const next = this.matcher.advance(s, cp);
    if (!next) return;
    for (const t of child.tokens) mask[t] = 1;
    this.walk(child, next, mask);
  }
}
