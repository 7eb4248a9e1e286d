// The BPE merge queue against a plain reference: a list kept in order by score (highest
// first), then left position (lowest first), through random pushes and pops, past the
// 1024-entry initial capacity and across clear().

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MergeQueue } from '../../server/tokenizer/merge-queue.js';
import { seededRandom } from '../profiler/synthetic.js';

type Entry = { score: number; left: number; right: number; size: number };

function popRef(ref: Entry[]): Entry {
  let best = 0;
  for (let i = 1; i < ref.length; i++) {
    const a = ref[i];
    const b = ref[best];
    if (a.score > b.score || (a.score === b.score && a.left < b.left)) best = i;
  }
  return ref.splice(best, 1)[0];
}

test('pops in score order, leftmost first on equal scores, with every field of the entry', () => {
  const rand = seededRandom(21);
  const q = new MergeQueue();
  for (let round = 0; round < 3; round++) {
    q.clear();
    assert.equal(q.length, 0);
    const ref: Entry[] = [];
    let nextLeft = 0;
    // Round 1 pushes 3000 entries before popping any (growth with a full heap); the others interleave.
    const ops = round === 1 ? 6000 : 4000;
    for (let k = 0; k < ops; k++) {
      const pushNow = round === 1 ? k < 3000 : ref.length === 0 || rand() < 0.6;
      if (pushNow) {
        // Few distinct scores, so equal scores (and the left-position rule) are common;
        // left positions are unique, as in the encoder.
        const e = { score: Math.floor(rand() * 5) - 2, left: nextLeft++ * 7 % 4099, right: Math.floor(rand() * 1e6), size: 1 + Math.floor(rand() * 9) };
        q.push(e.score, e.left, e.right, e.size);
        ref.push(e);
      } else {
        const want = popRef(ref);
        q.pop();
        assert.deepEqual({ left: q.topLeft, right: q.topRight, size: q.topSize }, { left: want.left, right: want.right, size: want.size }, `round ${round} op ${k}`);
      }
      assert.equal(q.length, ref.length);
    }
    while (ref.length > 0) {
      const want = popRef(ref);
      q.pop();
      assert.equal(q.topLeft, want.left);
      assert.equal(q.topRight, want.right);
      assert.equal(q.topSize, want.size);
    }
    assert.equal(q.length, 0);
  }
});

test('clear() drops entries still queued', () => {
  const q = new MergeQueue();
  q.push(9, 1, 2, 2);
  q.push(8, 3, 4, 2);
  q.clear();
  assert.equal(q.length, 0);
  q.push(1, 5, 6, 2);
  q.pop();
  assert.deepEqual([q.topLeft, q.topRight, q.topSize, q.length], [5, 6, 2, 0]);
});

test('one entry in, the same entry out; an empty queue reports length 0', () => {
  const q = new MergeQueue();
  q.push(1.5, 3, 4, 2);
  assert.equal(q.length, 1);
  q.pop();
  assert.deepEqual([q.topLeft, q.topRight, q.topSize, q.length], [3, 4, 2, 0]);
});
