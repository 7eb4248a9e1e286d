// Property tests for the stop matcher: whatever the stop strings and however the text
// is split into pieces, the shown text is exactly the text before the first stop string
// (all of it when none occurs), and no prefix of what is shown at any point is followed
// by a shown byte of a stop string.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import '../fc-seed.js';
import { StopMatcher } from '../../server/scheduler/stop-matcher.js';

/** A small alphabet makes overlaps and near-misses (prefixes of stop strings) common. */
const textArb = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'é', '\n'), maxLength: 40, size: 'max' });
const stopsArb = fc.array(fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'é', '\n'), minLength: 1, maxLength: 4 }), { maxLength: 3 });

/** Split s at random cut points (empty pieces included). */
const splitArb = (s: string) =>
  fc.array(fc.integer({ min: 0, max: s.length }), { maxLength: 12 }).map((cuts) => {
    const at = [0, ...cuts.sort((a, b) => a - b), s.length];
    return at.slice(1).map((end, i) => s.slice(at[i], end));
  });

/** Written character by character: generation stops at the first character that completes a stop string. */
function expectedShown(text: string, stops: string[]): { shown: string; stopped: boolean } {
  for (let i = 1; i <= text.length; i++) {
    const head = text.slice(0, i);
    let cut = -1;
    for (const s of stops) if (head.endsWith(s) && (cut < 0 || i - s.length < cut)) cut = i - s.length;
    if (cut >= 0) return { shown: text.slice(0, cut), stopped: true };
  }
  return { shown: text, stopped: false };
}

test('shown text is the text before the first stop string, whatever the split, and ends on length with everything held back', () => {
  fc.assert(
    fc.property(
      textArb.chain((t) => fc.tuple(fc.constant(t), splitArb(t))),
      stopsArb,
      ([text, pieces], stops) => {
        const m = new StopMatcher(stops);
        let shown = '';
        let stopped = false;
        let fed = '';
        for (const p of pieces) {
          fed += p;
          const r = m.push(p);
          shown += r.text;
          // Never ahead of the fed text, never showing text that the rest could turn into a stop.
          assert.ok(fed.startsWith(shown));
          assert.ok(expectedShown(fed, stops).shown.startsWith(shown) || !stops.length);
          if (r.stopped) {
            stopped = true;
            break;
          }
        }
        // Generation ended (length or end token): what was held back is real output.
        if (!stopped) shown += m.flush();
        const want = expectedShown(text, stops);
        assert.equal(stopped, want.stopped);
        assert.equal(shown, want.shown);
      },
    ),
    { numRuns: 1000 },
  );
});

test('nothing held back is a whole stop string, and what is held back could still start one', () => {
  fc.assert(
    fc.property(textArb.chain((t) => fc.tuple(fc.constant(t), splitArb(t))), stopsArb, ([text, pieces], stops) => {
      fc.pre(stops.length > 0 && expectedShown(text, stops).stopped === false);
      const m = new StopMatcher(stops);
      let shown = '';
      for (const p of pieces) shown += m.push(p).text;
      const held = text.slice(shown.length);
      // Holding back is only allowed for a tail that is a proper prefix of some stop string.
      if (held.length > 0) assert.ok(stops.some((s) => s.length > held.length && s.startsWith(held)), `held ${JSON.stringify(held)}`);
      assert.equal(m.flush(), held);
    }),
    { numRuns: 1000 },
  );
});

// The case the property found (random seed, CI): overlapping stops "c" and "écé". The
// stop that completes first wins, whatever the split of the text into pieces.
test('overlapping stops: the first to complete wins, the same for every split', () => {
  for (const pieces of [['éc', 'é'], ['écé'], ['é', 'c', 'é']]) {
    const m = new StopMatcher(['c', 'écé']);
    let shown = '';
    for (const p of pieces) {
      const r = m.push(p);
      shown += r.text;
      if (r.stopped) break;
    }
    assert.equal(shown, 'é', JSON.stringify(pieces));
  }
});
