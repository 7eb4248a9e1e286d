// Glue between a request's grammar and the sampler: compiled grammars and their interned
// states (masks, transitions) are kept per tokenizer and grammar text (a client sending the same schema
// again reuses both), and a sequence's picker masks each row before the draw.

import { parseGbnf } from './gbnf.js';
import { Matcher } from './matcher.js';
import { buildVocab, GrammarConstraint, type ConstraintVocab, type StateTable } from './constraint.js';
import type { RuntimeTokenizer } from '../scheduler/runtime.js';
import type { Picked } from '../scheduler/types.js';

interface Compiled {
  matcher: Matcher;
  states: StateTable;
}

const vocabs = new WeakMap<RuntimeTokenizer, { vocab: ConstraintVocab; grammars: Map<string, Compiled> }>();
const GRAMMARS_KEPT = 16;

function forTokenizer(tok: RuntimeTokenizer): { vocab: ConstraintVocab; grammars: Map<string, Compiled> } {
  let v = vocabs.get(tok);
  if (!v) {
    v = { vocab: buildVocab(tok.nVocab, (t) => tok.tokenBytes(t), (t) => tok.isEndToken(t)), grammars: new Map() };
    vocabs.set(tok, v);
  }
  return v;
}

/** A fresh constraint for one sequence. Throws GrammarError for a bad grammar. */
export function makeConstraint(tok: RuntimeTokenizer, gbnf: string, continuation: boolean): GrammarConstraint {
  const v = forTokenizer(tok);
  let c = v.grammars.get(gbnf);
  if (!c) {
    c = { matcher: new Matcher(parseGbnf(gbnf)), states: new Map() };
    if (v.grammars.size >= GRAMMARS_KEPT) v.grammars.delete(v.grammars.keys().next().value!);
    v.grammars.set(gbnf, c);
  }
  return new GrammarConstraint(c.matcher, v.vocab, !continuation, c.states);
}

/** Wraps a sampler: the row is masked in place (it is this sequence's alone) before the draw. */
export function constrainedPicker(base: (logits: Float32Array) => Picked, c: GrammarConstraint): (logits: Float32Array) => Picked {
  return (logits) => {
    c.apply(logits);
    const p = base(logits);
    if (!c.accept(p.token)) throw new Error(`the sampler picked token ${p.token}, which the grammar does not allow`);
    return p;
  };
}
