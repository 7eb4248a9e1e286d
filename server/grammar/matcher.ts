// Matching text against a compiled grammar one code point at a time. The state is a set
// of stacks (a pushdown automaton that follows every alternative at once): each stack
// is a linked list of positions inside alternatives, innermost first, whose top always
// points at a character class. Feeding a character keeps the stacks whose class takes
// it, advances them and expands rule references until each top is a class again. An
// empty stack means the root rule is complete. States are immutable, so a token can be
// tried and thrown away; `key` names a state for the token-mask cache. Stack nodes are
// interned, so equal stacks are one object and a key is a short list of node ids; states
// are interned by key too and remember the state each code point leads to, so walking the
// vocabulary trie in a state that loops on itself (inside a string) is mostly lookups.

import type { Element, Grammar } from './gbnf.js';

interface Node {
  /** Index into Matcher.alts. */
  alt: number;
  idx: number;
  next: Node | null;
  /** Equal stacks are one interned node, so this id names the whole stack. */
  id: number;
}

export interface GrammarState {
  /** null entries: stacks that completed the root rule. */
  readonly stacks: readonly (Node | null)[];
  readonly key: string;
  /** Code point -> the state after it (null: refused), filled as they are asked for. */
  readonly trans: Map<number, GrammarState | null>;
}

const MAX_DEPTH = 200;
/** Interned stack nodes kept per grammar; past this the table starts over (ids stay unique). */
const NODES_KEPT = 200_000;
/** Interned states kept per grammar; past this the table starts over. */
const STATES_KEPT = 20_000;

export class Matcher {
  /** Every alternative of every rule, flattened. */
  private readonly alts: Element[][] = [];
  /** rule -> indexes into alts. */
  private readonly ruleAlts: number[][] = [];
  /** "alt,idx,nextId" -> node: stacks are hash-consed so a state's key is a few small ints. */
  private nodes = new Map<string, Node>();
  private nextId = 0;
  /** key -> state: equal states are one object, so each keeps its transitions. */
  private states = new Map<string, GrammarState>();
  readonly initial: GrammarState;

  constructor(readonly grammar: Grammar) {
    for (const alts of grammar.rules) {
      this.ruleAlts.push(alts.map((a) => this.alts.push(a) - 1));
    }
    const out: (Node | null)[] = [];
    for (const a of this.ruleAlts[grammar.root]) this.expand(this.node(a, 0, null), out, 0);
    this.initial = this.state(out);
  }

  /** The root rule is complete here (end of generation allowed). */
  accepting(s: GrammarState): boolean {
    return s.stacks.includes(null);
  }

  /** Nothing more can follow. */
  finished(s: GrammarState): boolean {
    return s.stacks.every((n) => n === null);
  }

  /** The state after code point `cp`, or null if the grammar does not allow it. */
  advance(s: GrammarState, cp: number): GrammarState | null {
    let r = s.trans.get(cp);
    if (r === undefined) {
      r = this.step(s, cp);
      s.trans.set(cp, r);
    }
    return r;
  }

  private step(s: GrammarState, cp: number): GrammarState | null {
    const out: (Node | null)[] = [];
    for (const n of s.stacks) {
      if (n === null) continue;
      const el = this.alts[n.alt][n.idx] as Extract<Element, { t: 'c' }>;
      if (!matches(el, cp)) continue;
      this.expand(this.node(n.alt, n.idx + 1, n.next), out, 0);
    }
    return out.length === 0 ? null : this.state(out);
  }

  /** The state after a whole string, or null. */
  advanceAll(s: GrammarState, cps: ArrayLike<number>): GrammarState | null {
    let cur: GrammarState | null = s;
    for (let i = 0; i < cps.length && cur; i++) cur = this.advance(cur, cps[i]);
    return cur;
  }

  private node(alt: number, idx: number, next: Node | null): Node {
    const k = `${alt},${idx},${next ? next.id : -1}`;
    let n = this.nodes.get(k);
    if (!n) {
      if (this.nodes.size >= NODES_KEPT) this.nodes = new Map();
      n = { alt, idx, next, id: this.nextId++ };
      this.nodes.set(k, n);
    }
    return n;
  }

  /** Pushes the stacks reachable from `n` whose top is a class (or null: done). */
  private expand(n: Node | null, out: (Node | null)[], depth: number): void {
    if (depth > MAX_DEPTH) throw new Error('grammar nests too deeply (left recursion?)');
    if (n === null) {
      out.push(null);
      return;
    }
    const alt = this.alts[n.alt];
    if (n.idx >= alt.length) {
      this.expand(n.next, out, depth + 1);
      return;
    }
    const el = alt[n.idx];
    if (el.t === 'c') {
      out.push(n);
      return;
    }
    // Return address first; an alternative that ended is popped right away.
    const ret = n.idx + 1 >= alt.length ? n.next : this.node(n.alt, n.idx + 1, n.next);
    for (const a of this.ruleAlts[el.rule]) this.expand(this.node(a, 0, ret), out, depth + 1);
  }

  private state(stacks: (Node | null)[]): GrammarState {
    // Drop duplicate stacks (alternatives that reached the same place); -1 stands for done.
    const seen = new Map<number, Node | null>();
    for (const n of stacks) seen.set(n === null ? -1 : n.id, n);
    const ids = [...seen.keys()].sort((a, b) => a - b);
    const key = ids.join(',');
    let st = this.states.get(key);
    if (!st) {
      if (this.states.size >= STATES_KEPT) this.states = new Map();
      st = { stacks: ids.map((k) => seen.get(k)!), key, trans: new Map() };
      this.states.set(key, st);
    }
    return st;
  }
}

function matches(el: { ranges: number[]; neg: boolean }, cp: number): boolean {
  let hit = false;
  for (let i = 0; i < el.ranges.length; i += 2) {
    if (cp >= el.ranges[i] && cp <= el.ranges[i + 1]) {
      hit = true;
      break;
    }
  }
  return hit !== el.neg;
}
