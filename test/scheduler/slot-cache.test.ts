// The engine loop's prefix cache and prompt scoring against a context that checks
// positions the way the engine does (each decode must continue the slot's cache).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineLoop } from '../../server/scheduler/engine-loop.js';
import { SlotCache } from '../../server/scheduler/slot-cache.js';
import type { DecodeBatch } from '../../server/engine/types.js';
import type { DecodeContext, EndReason, SequenceSpec } from '../../server/scheduler/types.js';

const NV = 4;

class CheckingContext implements DecodeContext {
  readonly lengths: number[];
  readonly batches: { tokens: number[]; positions: number[]; want: number[] }[] = [];
  failNext = false;
  constructor(readonly nSeq: number, readonly nCtx: number) {
    this.lengths = new Array(nSeq).fill(0);
  }
  async decode(b: DecodeBatch): Promise<Float32Array> {
    this.batches.push({ tokens: [...b.tokens], positions: [...b.positions], want: [...b.wantLogits] });
    if (this.failNext) {
      this.failNext = false;
      throw new Error('failed on purpose');
    }
    let rows = 0;
    for (let j = 0; j < b.tokens.length; j++) {
      const s = b.seqIds[j];
      if (b.positions[j] !== this.lengths[s]) throw new Error(`seq ${s}: position ${b.positions[j]} but cache holds ${this.lengths[s]}`);
      this.lengths[s]++;
      rows += b.wantLogits[j];
    }
    // Row r's logits favour token (position + 1) % NV, so scores are checkable.
    const out = new Float32Array(rows * NV);
    let r = 0;
    for (let j = 0; j < b.tokens.length; j++) if (b.wantLogits[j]) out[r++ * NV + ((b.positions[j] + 1) % NV)] = 5;
    return out;
  }
  truncate(seq: number, p0: number): void {
    this.lengths[seq] = Math.min(this.lengths[seq], p0);
  }
}

function job(prompt: number[], maxNew: number, extra: Partial<SequenceSpec> = {}): { spec: SequenceSpec; end: Promise<EndReason>; cached: () => number } {
  let resolve!: (r: EndReason) => void;
  const end = new Promise<EndReason>((r) => (resolve = r));
  let cached = -1;
  const spec: SequenceSpec = {
    prompt, maxNewTokens: maxNew, pick: () => ({ token: 1 }), isEndToken: () => false, onToken: () => true, onEnd: (r) => resolve(r),
    onCached: (n) => (cached = n), ...extra,
  };
  return { spec, end, cached: () => cached };
}

const prompt = (n: number, tail = 0) => Array.from({ length: n }, (_, i) => (i < n - 2 ? i % NV : tail));

test('a prompt sharing a prefix with a slot decodes only the rest, at the right positions', async () => {
  const ctx = new CheckingContext(1, 128);
  const loop = new EngineLoop(ctx, { maxWaiting: 4, nBatch: 64 });
  const a = job(prompt(20, 1), 3);
  loop.submit({ sequences: [a.spec] });
  await a.end;
  assert.equal(a.cached(), 0);
  ctx.batches.length = 0;
  const b = job(prompt(20, 2), 2);
  loop.submit({ sequences: [b.spec] });
  assert.equal(await b.end, 'length');
  assert.equal(b.cached(), 18);
  assert.deepEqual(ctx.batches[0].positions, [18, 19]);
  // cache_prompt false: all of it again.
  ctx.batches.length = 0;
  const c = job(prompt(20, 2), 1, { cachePrompt: false });
  loop.submit({ sequences: [c.spec] });
  await c.end;
  assert.equal(c.cached(), 0);
  assert.equal(ctx.batches[0].positions[0], 0);
  await loop.close();
});

test('a failed decode forgets the slot cache', async () => {
  const ctx = new CheckingContext(1, 128);
  const loop = new EngineLoop(ctx, { maxWaiting: 4, nBatch: 64, onError: () => {} });
  const a = job(prompt(20), 2);
  loop.submit({ sequences: [a.spec] });
  await a.end;
  ctx.failNext = true;
  const b = job(prompt(20), 2);
  loop.submit({ sequences: [b.spec] });
  assert.equal(await b.end, 'error');
  const c = job(prompt(20), 2);
  loop.submit({ sequences: [c.spec] });
  assert.equal(await c.end, 'length');
  assert.equal(c.cached(), 0);
  await loop.close();
});

test('prompt scoring gets every position but the last; max_tokens 0 ends after the prompt', async () => {
  const ctx = new CheckingContext(1, 128);
  const loop = new EngineLoop(ctx, { maxWaiting: 4, nBatch: 4 });
  const seen: [number, number][] = [];
  let tokens = 0;
  const a = job(prompt(10), 0, {
    scorePrompt: (pos, row) => seen.push([pos, row.indexOf(5)]),
    onToken: () => (tokens++, true),
  });
  loop.submit({ sequences: [a.spec] });
  assert.equal(await a.end, 'length');
  assert.equal(tokens, 0);
  // Chunks of 4 across steps: positions 0..8 scored, in order, each row its own.
  assert.deepEqual(seen, Array.from({ length: 9 }, (_, p) => [p, (p + 1) % NV]));
  await loop.close();
});

test('SlotCache: longest match wins, short matches do not count, ties go to the least recently used', () => {
  const c = new SlotCache(3);
  const long = Array.from({ length: 30 }, (_, i) => i);
  let free = [2, 1, 0];
  const first = c.take(free, long, true);
  assert.equal(first.slot, 0);
  c.append(first.slot, long);
  free = [2, 1, 0];
  // A prompt sharing 3 tokens does not evict slot 0's cache.
  const other = c.take(free, [0, 1, 2, 99, 98, 97, 96, 95, 94, 93], true);
  assert.notEqual(other.slot, 0);
  free = [2, 1, 0];
  const again = c.take(free, [...long.slice(0, 20), 7, 7], true);
  assert.deepEqual(again, { slot: 0, reuse: 20 });
  assert.deepEqual(free, [2, 1]);
});

test('SlotCache: with no usable match the least recently used free slot is taken, wherever it sits in the free list', () => {
  const c = new SlotCache(3);
  assert.deepEqual([c.held(0), c.held(1), c.held(2)], [[], [], []], 'a new cache holds nothing');
  const use = (slot: number, toks: number[]) => {
    const free = [slot];
    c.take(free, toks, true);
    c.append(slot, toks);
  };
  use(1, [50, 51]); // oldest
  use(0, [60, 61]);
  use(2, [70, 71]); // newest
  for (const order of [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]]) {
    const free = [...order];
    const c2 = c.take(free, [1, 2, 3], true);
    assert.equal(c2.slot, 1, `free list ${order}`);
    assert.deepEqual(free, order.filter((s) => s !== 1));
    // Taking marks it used: put it back and take again, now slot 0 is the oldest.
    c.append(1, [1, 2, 3]);
    const next = c.take([...order], [9], true);
    assert.equal(next.slot, 0, `then ${order}`);
    c.append(0, [9]);
    // Restore the age order 1 < 0 < 2 for the next round.
    c.take([2], [70], true);
    c.append(2, [70, 71]);
    c.take([1], [50], true);
    c.append(1, [50, 51]);
    c.take([0], [60], true);
    c.append(0, [60, 61]);
    c.take([2], [70], true);
    c.append(2, [71]);
  }
});

test('SlotCache: a match counts from 8 tokens; the longest wins wherever it sits; the reuse keeps the last prompt token to decode', () => {
  const c = new SlotCache(3);
  const base = Array.from({ length: 12 }, (_, i) => 100 + i);
  const fill = (slot: number, toks: number[]) => {
    c.take([slot], toks, true);
    c.append(slot, toks);
  };
  fill(0, base.slice(0, 7)); // shares 7 with the prompts below: does not count
  fill(1, [1, 2, 3]); // no match
  fill(2, base.slice(0, 8)); // shares 8: counts
  // Oldest is slot 0, but slot 2's 8-token match wins, at either end of the free list.
  for (const free of [[2, 1, 0], [0, 1, 2]]) {
    const got = c.take([...free], [...base, 5], true);
    assert.deepEqual(got, { slot: 2, reuse: 8 });
    assert.deepEqual(c.held(2), base.slice(0, 8));
  }
  // Slot 0 (7 tokens) is chosen only as the least recently used; its 7 tokens are still reused.
  const lru = c.take([0, 1], [...base, 6], true);
  assert.deepEqual(lru, { slot: 0, reuse: 7 });
  // A prompt equal to the cache reuses all but its last token, and the slot forgets the rest.
  c.append(0, base.slice(7));
  const same = c.take([0], base.slice(0, 10), true);
  assert.deepEqual(same, { slot: 0, reuse: 9 });
  assert.deepEqual(c.held(0), base.slice(0, 9));
  // reuseOk false: nothing reused, the cache is dropped.
  const fresh = c.take([2], base, false);
  assert.deepEqual(fresh, { slot: 2, reuse: 0 });
  assert.deepEqual(c.held(2), []);
  c.append(2, [4, 4]);
  assert.deepEqual(c.held(2), [4, 4]);
  c.clear(2);
  assert.deepEqual(c.held(2), []);
});

test('SlotCache: a cache equal to the prompt ties with a longer cache sharing the same prefix (LRU decides)', () => {
  const c = new SlotCache(2);
  const p = Array.from({ length: 10 }, (_, i) => i);
  c.take([1], [...p, 99], true);
  c.append(1, [...p, 99]); // older, holds p + 99
  c.take([0], p, true);
  c.append(0, p); // newer, holds exactly p
  assert.deepEqual(c.take([0, 1], p, true), { slot: 1, reuse: 9 });
});
