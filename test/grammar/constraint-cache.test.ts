// The constraint's per-state caches (interned states, their masks as allowed or banned
// lists, the state each token leads to) against a brute-force oracle: at every step of
// random walks that share one state table (so later walks run on warm caches), the
// masked row must equal "token t is allowed iff the matcher takes its text from the
// reference state" (end tokens iff the state accepts), allowed logits must keep their
// values, and the state the constraint moved to must be the reference's.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGbnf } from '../../server/grammar/gbnf.js';
import { Matcher, type GrammarState } from '../../server/grammar/matcher.js';
import { buildVocab, GrammarConstraint, type StateTable } from '../../server/grammar/constraint.js';
import { JSON_OBJECT_GBNF } from '../../server/grammar/json-schema.js';
import { rng } from '../seeded-rng.js';

const PIECES = ['{"', '":', '",', '"}', '{', '}', '"', ':', ',', '[', ']', ' ', ' "', '", "', 'a', 'b', 'ab', ' a', 'key', '0', '1', '12', '.', '-', 'e', '\\', '\\"', '\\n', 'true', 'tr', 'ue', 'null', 'é', '}}', '}]', ' {', 'x"', '\n'];
const EOS = PIECES.length;
const N = PIECES.length + 1;
const enc = new TextEncoder();
const vocab = buildVocab(N, (t) => (t < PIECES.length ? enc.encode(PIECES[t]) : new Uint8Array(0)), (t) => t === EOS);
const cps = (s: string) => [...s].map((c) => c.codePointAt(0)!);


/** What the mask must be from state s: the brute-force definition. */
function oracle(m: Matcher, s: GrammarState, first: boolean): boolean[] {
  return Array.from({ length: N }, (_, t) => {
    if (t === EOS) return m.accepting(s);
    let p = PIECES[t];
    if (first && p.startsWith(' ')) p = p.slice(1);
    return p.length > 0 && m.advanceAll(s, cps(p)) !== null;
  });
}

for (const [name, gbnf] of [
  ['JSON object', JSON_OBJECT_GBNF],
  // Only the first piece's stripped space lets ' {' in: first and later states must not share caches.
  ['no spaces', 'root ::= "{" "a"* "}"'],
  ['list of short strings', 'root ::= "[" ( str ( "," " "? str )* )? "]"\nstr ::= "\\"" [a-z]{0,3} "\\""'],
] as const) {
  test(`warm caches give the brute-force mask at every step: ${name}`, () => {
    const m = new Matcher(parseGbnf(gbnf));
    const table: StateTable = new Map();
    let steps = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const r = rng(seed);
      const first = seed % 2 === 0;
      const c = new GrammarConstraint(m, vocab, first, table);
      let ref: GrammarState = m.initial;
      let stripFirst = first;
      for (let step = 0; step < 60; step++) {
        const before = Float32Array.from({ length: N }, () => r() * 4);
        const row = before.slice();
        c.apply(row);
        const want = oracle(m, ref, stripFirst);
        for (let t = 0; t < N; t++) {
          if (want[t]) assert.equal(row[t], before[t], `seed ${seed} step ${step}: token ${JSON.stringify(PIECES[t] ?? 'EOS')} allowed but changed`);
          else assert.equal(row[t], -Infinity, `seed ${seed} step ${step}: token ${JSON.stringify(PIECES[t] ?? 'EOS')} not allowed but kept`);
        }
        const allowed = want.flatMap((ok, t) => (ok ? [t] : []));
        assert.ok(allowed.length > 0, `seed ${seed} step ${step}: nothing allowed`);
        // Favour ending late so walks get deep: EOS only one time in four when allowed.
        const pool = allowed.length > 1 && r() < 0.75 ? allowed.filter((t) => t !== EOS) : allowed;
        const t = pool[Math.floor(r() * pool.length)];
        assert.ok(c.accept(t), `seed ${seed} step ${step}: allowed token refused`);
        steps++;
        if (t === EOS) break;
        let p = PIECES[t];
        if (stripFirst && p.startsWith(' ')) p = p.slice(1);
        ref = m.advanceAll(ref, cps(p))!;
        stripFirst = false;
        assert.equal(c.finished, m.finished(ref));
      }
    }
    assert.ok(steps > 100, `only ${steps} steps walked`);
  });
}

test('a token the mask bans is refused by accept, also once its transition is cached', () => {
  const m = new Matcher(parseGbnf('root ::= "{" "}"'));
  const table: StateTable = new Map();
  for (let i = 0; i < 2; i++) {
    const c = new GrammarConstraint(m, vocab, false, table);
    assert.equal(c.accept(PIECES.indexOf('}')), false);
    assert.equal(c.accept(EOS), false);
    assert.ok(c.accept(PIECES.indexOf('{')));
    assert.equal(c.accept(PIECES.indexOf('{')), false);
    assert.ok(c.accept(PIECES.indexOf('}')));
    assert.ok(c.finished);
    assert.ok(c.accept(EOS));
  }
});
