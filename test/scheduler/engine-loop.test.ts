// Engine-loop policy tests. These use a controllable context instead of the real engine
// (the end-to-end tests under test/e2e use the real one): it checks positions the way
// the engine does, records every batch, and can hold a step open or fail on demand,
// which the real engine cannot be made to do on cue.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineLoop, QueueFullError, ShuttingDownError } from '../../server/scheduler/engine-loop.js';
import type { DecodeBatch } from '../../server/engine/types.js';
import type { DecodeContext, EndReason, SequenceSpec } from '../../server/scheduler/types.js';

const NV = 8;

class ScriptedContext implements DecodeContext {
  readonly lengths: number[];
  readonly batches: { seqIds: number[]; positions: number[]; want: number[] }[] = [];
  truncates: [number, number][] = [];
  hold: Promise<void> | null = null;
  failNext = false;
  constructor(readonly nSeq: number, readonly nCtx: number) {
    this.lengths = new Array(nSeq).fill(0);
  }
  async decode(b: DecodeBatch): Promise<Float32Array> {
    this.batches.push({ seqIds: [...b.seqIds], positions: [...b.positions], want: [...b.wantLogits] });
    if (this.hold) await this.hold;
    if (this.failNext) {
      this.failNext = false;
      throw new Error('decode failed on purpose');
    }
    for (let j = 0; j < b.tokens.length; j++) {
      const s = b.seqIds[j];
      if (b.positions[j] !== this.lengths[s]) throw new Error(`seq ${s}: position ${b.positions[j]} but cache holds ${this.lengths[s]}`);
      if (b.positions[j] >= this.nCtx) throw new Error('past context');
      this.lengths[s]++;
    }
    let rows = 0;
    for (const w of b.wantLogits) rows += w;
    return new Float32Array(rows * NV);
  }
  truncate(seq: number, p0: number): void {
    this.truncates.push([seq, p0]);
    this.lengths[seq] = Math.min(this.lengths[seq], p0);
  }
}

interface Rec {
  tokens: number[];
  end: Promise<EndReason>;
  spec: SequenceSpec;
}

/** A sequence whose sampler emits `script` in order (then 1s). */
function seqSpec(promptLen: number, maxNew: number, script: number[] = [], opts: { endToken?: number; stopAfter?: number } = {}): Rec {
  let resolve!: (r: EndReason) => void;
  const end = new Promise<EndReason>((r) => (resolve = r));
  const tokens: number[] = [];
  let i = 0;
  const spec: SequenceSpec = {
    prompt: Array.from({ length: promptLen }, (_, k) => k % NV),
    maxNewTokens: maxNew,
    pick: () => ({ token: script[i++] ?? 1 }),
    isEndToken: (t) => t === opts.endToken,
    onToken: (p) => {
      tokens.push(p.token);
      return opts.stopAfter === undefined || tokens.length < opts.stopAfter;
    },
    onEnd: (r) => resolve(r),
  };
  return { tokens, end, spec };
}

test('sequences of different requests share each decode step', async () => {
  const ctx = new ScriptedContext(4, 64);
  const loop = new EngineLoop(ctx, { maxWaiting: 8, nBatch: 32 });
  const a = seqSpec(3, 5);
  const b = seqSpec(4, 5);
  loop.submit({ sequences: [a.spec] });
  loop.submit({ sequences: [b.spec] });
  assert.equal(await a.end, 'length');
  assert.equal(await b.end, 'length');
  assert.equal(a.tokens.length, 5);
  // Step 1 prefilled both prompts together; later steps carry one token from each.
  assert.deepEqual(new Set(ctx.batches[0].seqIds), new Set([0, 1]));
  assert.equal(ctx.batches[0].seqIds.length, 7);
  assert.deepEqual(ctx.batches[1].seqIds.sort(), [0, 1]);
  // Only the last prompt token of each sequence asked for logits.
  assert.equal(ctx.batches[0].want.reduce((x, y) => x + y, 0), 2);
  // Slots keep their cache when the sequences end (prefix reuse): prompt + all but the last token.
  assert.deepEqual(ctx.lengths, [3 + 4, 4 + 4, 0, 0]);
  await loop.close();
});

test('a request arriving mid-generation joins at the next step', async () => {
  const ctx = new ScriptedContext(2, 64);
  const seen: number[] = [];
  const loop = new EngineLoop(ctx, { maxWaiting: 8, nBatch: 16, onStep: (s) => seen.push(s.sequences) });
  const a = seqSpec(2, 30);
  loop.submit({ sequences: [a.spec] });
  while (a.tokens.length < 3) await new Promise((r) => setImmediate(r));
  const b = seqSpec(2, 3);
  loop.submit({ sequences: [b.spec] });
  await b.end;
  assert.ok(a.tokens.length < 30, 'b finished while a was still generating');
  assert.ok(seen.includes(2), 'some step decoded both sequences');
  await a.end;
  await loop.close();
});

test('long prompts are split into nBatch chunks, positions stay contiguous', async () => {
  const ctx = new ScriptedContext(1, 64);
  const loop = new EngineLoop(ctx, { maxWaiting: 1, nBatch: 8 });
  const a = seqSpec(20, 2);
  loop.submit({ sequences: [a.spec] });
  assert.equal(await a.end, 'length');
  assert.deepEqual(ctx.batches.slice(0, 3).map((b) => b.positions.length), [8, 8, 4]);
  assert.deepEqual(ctx.batches[2].want, [0, 0, 0, 1]);
  assert.deepEqual(ctx.batches[0].want.every((w) => w === 0), true);
  await loop.close();
});

test('end token ends with stop (not shown); onToken=false ends with stop', async () => {
  const ctx = new ScriptedContext(2, 64);
  const loop = new EngineLoop(ctx, { maxWaiting: 4, nBatch: 8 });
  const a = seqSpec(2, 10, [3, 4, 7, 5], { endToken: 7 });
  const b = seqSpec(2, 10, [], { stopAfter: 2 });
  loop.submit({ sequences: [a.spec] });
  loop.submit({ sequences: [b.spec] });
  assert.equal(await a.end, 'stop');
  assert.deepEqual(a.tokens, [3, 4]);
  assert.equal(await b.end, 'stop');
  assert.equal(b.tokens.length, 2);
  await loop.close();
});

test('full wait queue refuses with QueueFullError; cancel of a waiting job ends it at once', async () => {
  const ctx = new ScriptedContext(1, 64);
  let release!: () => void;
  ctx.hold = new Promise((r) => (release = r));
  const loop = new EngineLoop(ctx, { maxWaiting: 1, nBatch: 8 });
  const a = seqSpec(2, 2);
  loop.submit({ sequences: [a.spec] });
  await new Promise((r) => setImmediate(r));
  const b = seqSpec(2, 2);
  const hb = loop.submit({ sequences: [b.spec] });
  assert.throws(() => loop.submit({ sequences: [seqSpec(2, 2).spec] }), QueueFullError);
  assert.equal(loop.stats().waiting, 1);
  hb.cancel();
  assert.equal(await b.end, 'cancelled');
  assert.equal(loop.stats().waiting, 0);
  ctx.hold = null;
  release();
  assert.equal(await a.end, 'length');
  await loop.close();
});

test('cancel of a running job frees its slot after the step in flight', async () => {
  const ctx = new ScriptedContext(1, 64);
  const loop = new EngineLoop(ctx, { maxWaiting: 4, nBatch: 8 });
  const a = seqSpec(2, 1000);
  const ha = loop.submit({ sequences: [a.spec] });
  while (a.tokens.length < 5) await new Promise((r) => setImmediate(r));
  const stepsBefore = loop.stats().steps;
  ha.cancel();
  assert.equal(await a.end, 'cancelled');
  assert.ok(loop.stats().steps - stepsBefore <= 1, 'slot freed within one step');
  assert.equal(loop.stats().slotsBusy, 0);
  // The freed slot serves the next job.
  const b = seqSpec(2, 2);
  loop.submit({ sequences: [b.spec] });
  assert.equal(await b.end, 'length');
  await loop.close();
});

test('a job with n sequences waits until n slots are free; FIFO holds', async () => {
  const ctx = new ScriptedContext(2, 64);
  const loop = new EngineLoop(ctx, { maxWaiting: 4, nBatch: 8 });
  const a = seqSpec(2, 6);
  loop.submit({ sequences: [a.spec] });
  const b1 = seqSpec(2, 2);
  const b2 = seqSpec(2, 2);
  // Prefilled in full (not from a's cached prompt), so their first batch is 4 tokens.
  b1.spec.cachePrompt = false;
  b2.spec.cachePrompt = false;
  loop.submit({ sequences: [b1.spec, b2.spec] });
  await Promise.all([a.end, b1.end, b2.end]);
  // b could only start after a released its slot.
  const firstBoth = ctx.batches.findIndex((b) => b.positions.length === 4);
  assert.ok(firstBoth > 0);
  assert.throws(() => loop.submit({ sequences: [seqSpec(1, 1).spec, seqSpec(1, 1).spec, seqSpec(1, 1).spec] }), RangeError);
  await loop.close();
});

test('a failed decode ends the sequences in it with error and the loop keeps serving', async () => {
  const ctx = new ScriptedContext(1, 64);
  const loop = new EngineLoop(ctx, { maxWaiting: 4, nBatch: 8, onError: () => {} });
  ctx.failNext = true;
  const a = seqSpec(2, 3);
  loop.submit({ sequences: [a.spec] });
  assert.equal(await a.end, 'error');
  const b = seqSpec(2, 3);
  loop.submit({ sequences: [b.spec] });
  assert.equal(await b.end, 'length');
  await loop.close();
});

test('after stopAccepting new jobs are refused; close cancels running ones', async () => {
  const ctx = new ScriptedContext(1, 1000);
  const loop = new EngineLoop(ctx, { maxWaiting: 4, nBatch: 8 });
  const a = seqSpec(2, 900);
  loop.submit({ sequences: [a.spec] });
  loop.stopAccepting();
  assert.throws(() => loop.submit({ sequences: [seqSpec(1, 1).spec] }), ShuttingDownError);
  await loop.close();
  assert.equal(await a.end, 'cancelled');
});
