// massPrefix when the target is out of reach (the sampler's p x total can exceed the
// candidates' summed weight by a rounding step, since the two sums add in different
// orders): it keeps every candidate, and never reads past `count` into the scratch
// arrays, which hold other rows' leftovers. Found by mutation testing (npm run mutate):
// the branch had no test at all.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { massPrefix } from '../../server/sampling/select.js';
import { Rng } from '../../server/sampling/rng.js';

test('a target beyond the total weight keeps every candidate, whatever lies past count', () => {
  const g = new Rng(5);
  for (let count = 1; count <= 48; count++) {
    for (let round = 0; round < 4; round++) {
      const cap = count + 8;
      // Scratch as the sampler leaves it: ids and weights past count are another row's.
      const w = new Float32Array(cap);
      const ids = new Int32Array(cap);
      const e = new Float64Array(cap);
      for (let i = 0; i < cap; i++) {
        w[i] = Math.round(g.nextDouble() * 8) / 4; // ties
        ids[i] = i;
        e[i] = i < count ? 1 + Math.floor(g.nextDouble() * 9) : 1e6;
      }
      let total = 0;
      for (let i = 0; i < count; i++) total += e[i];
      for (const target of [total * (1 + 2 ** -40), total + 1]) {
        const before = Array.from(ids.subarray(0, count)).sort((a, b) => a - b);
        const kept = massPrefix(w, ids, e, count, target);
        assert.equal(kept, count, `count ${count}, target ${target} > total ${total}`);
        assert.deepEqual(Array.from(ids.subarray(0, count)).sort((a, b) => a - b), before, 'the same ids, rearranged');
        for (let i = count; i < cap; i++) assert.equal(ids[i], i, 'nothing past count is touched');
      }
    }
  }
});

test('a target of exactly the total keeps the shortest prefix that reaches it (zero weights at the end left out)', () => {
  // Ids 0..29 with falling logits; the last five weigh 0 (an underflowed exp).
  const n = 30;
  const w = Float32Array.from({ length: n }, (_, i) => -i);
  const ids = Int32Array.from({ length: n }, (_, i) => n - 1 - i); // worst first: quickselect must move them
  const e = Float64Array.from(ids, (id) => (id < 25 ? 2 : 0));
  const kept = massPrefix(w, ids, e, n, 50);
  assert.equal(kept, 25);
  assert.deepEqual(Array.from(ids.subarray(0, kept)).sort((a, b) => a - b), Array.from({ length: 25 }, (_, i) => i));
});
