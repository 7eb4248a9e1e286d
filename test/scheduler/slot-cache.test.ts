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
