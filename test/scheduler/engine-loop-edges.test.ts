// Engine-loop edge cases the policy tests (engine-loop.test.ts) leave open, found by
// mutation testing: what each batch carries (token values, not only positions), prompt
// scoring rows, prefix reuse after generation, callbacks that throw, decodes that
// resolve without logits, slots of a job whose sequences end at different times, the
// pipelining order (next decode started before tokens are handed out), idle() and close().

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineLoop, QueueFullError, ShuttingDownError } from '../../server/scheduler/engine-loop.js';
import type { DecodeBatch } from '../../server/engine/types.js';
import type { DecodeContext, EndReason, SequenceSpec, StepInfo } from '../../server/scheduler/types.js';

const NV = 4;

/** Checks positions like the engine; records each batch; each logits row starts with its row index. */
class Ctx implements DecodeContext {
  readonly lengths: number[];
  readonly batches: { tokens: number[]; positions: number[]; seqIds: number[]; want: number[] }[] = [];
  hold: Promise<void> | null = null;
  /** What the next decode does instead of returning logits. */
  next: 'fail' | 'null' | null = null;
  truncateThrows = false;
  constructor(readonly nSeq: number, readonly nCtx = 256) {
    this.lengths = new Array(nSeq).fill(0);
  }
  decode(b: DecodeBatch): Promise<Float32Array> {
    this.batches.push({ tokens: [...b.tokens], positions: [...b.positions], seqIds: [...b.seqIds], want: [...b.wantLogits] });
    const mode = this.next;
    this.next = null;
    const run = async () => {
      if (this.hold) await this.hold;
      if (mode === 'fail') throw new Error('decode failed on purpose');
      if (mode === 'null') return null as unknown as Float32Array;
      for (let j = 0; j < b.tokens.length; j++) {
        const s = b.seqIds[j];
        if (b.positions[j] !== this.lengths[s]) throw new Error(`seq ${s}: position ${b.positions[j]} but cache holds ${this.lengths[s]}`);
        this.lengths[s]++;
      }
      let rows = 0;
      for (const w of b.wantLogits) rows += w;
      const out = new Float32Array(rows * NV);
      for (let r = 0; r < rows; r++) out[r * NV] = r;
      return out;
    };
    return run();
  }
  /** Holds every decode until the returned release is called (which also stops holding). */
  holdDecodes(): () => void {
    let release!: () => void;
    this.hold = new Promise((r) => (release = r));
    return () => {
      this.hold = null;
      release();
    };
  }
  truncate(seq: number, p0: number): void {
    if (this.truncateThrows) throw new Error('truncate failed on purpose');
    this.lengths[seq] = Math.min(this.lengths[seq], p0);
  }
}

interface Rec {
  tokens: number[];
  ends: [EndReason, Error | undefined][];
  end: Promise<EndReason>;
  spec: SequenceSpec;
}

/** Picks 10, 11, 12, ... (never an end token unless `endAt`). */
function seq(prompt: number[], maxNew: number, o: Partial<SequenceSpec> & { stopAfter?: number } = {}): Rec {
  let resolve!: (r: EndReason) => void;
  const end = new Promise<EndReason>((r) => (resolve = r));
  const tokens: number[] = [];
  const ends: [EndReason, Error | undefined][] = [];
  let k = 10;
  const spec: SequenceSpec = {
    prompt,
    maxNewTokens: maxNew,
    pick: () => ({ token: k++ }),
    isEndToken: () => false,
    onToken: (p) => {
      tokens.push(p.token);
      return o.stopAfter === undefined || tokens.length < o.stopAfter;
    },
    onEnd: (r, e) => {
      ends.push([r, e]);
      resolve(r);
    },
    ...o,
  };
  return { tokens, ends, end, spec };
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
const turn = () => new Promise((r) => setImmediate(r));

test('error classes carry their message and name', () => {
  const q = new QueueFullError(3);
  assert.equal(q.message, 'the wait queue is full (3 requests waiting)');
  assert.equal(q.name, 'QueueFullError');
  assert.equal(q.waiting, 3);
  const s = new ShuttingDownError();
  assert.equal(s.message, 'the server is shutting down');
  assert.equal(s.name, 'ShuttingDownError');
});

test('nBatch below the slot count is refused; equal is fine; slots reports nSeq', async () => {
  assert.throws(() => new EngineLoop(new Ctx(4), { maxWaiting: 1, nBatch: 3 }), { name: 'RangeError', message: 'nBatch (3) must be at least the number of slots (4)' });
  const loop = new EngineLoop(new Ctx(4), { maxWaiting: 1, nBatch: 4 });
  assert.equal(loop.slots, 4);
  assert.throws(() => loop.submit({ sequences: [] }), { name: 'RangeError', message: 'a job needs 1..4 sequences, got 0' });
  await loop.close();
});

test('batches carry the prompt tokens, then each sampled token at the next position', async () => {
  const ctx = new Ctx(1);
  const loop = new EngineLoop(ctx, { maxWaiting: 1, nBatch: 8 });
  const a = seq([5, 6, 7], 3);
  loop.submit({ sequences: [a.spec] });
  assert.equal(await a.end, 'length');
  assert.deepEqual(a.tokens, [10, 11, 12]);
  assert.deepEqual(ctx.batches.map((b) => b.tokens), [[5, 6, 7], [10], [11]]);
  assert.deepEqual(ctx.batches.map((b) => b.positions), [[0, 1, 2], [3], [4]]);
  await loop.close();
});

test('onStep reports sequences, tokens, prefill tokens and a sane duration; steps counts decodes', async () => {
  const ctx = new Ctx(2);
  const steps: StepInfo[] = [];
  const t0 = performance.now();
  const loop = new EngineLoop(ctx, { maxWaiting: 2, nBatch: 4, onStep: (s) => steps.push(s) });
  // Two 4-token prompts and a 4-token batch: the first step only has room for the first.
  const a = seq(range(4), 1, { cachePrompt: false });
  const b = seq(range(4, 50), 1, { cachePrompt: false });
  loop.submit({ sequences: [a.spec, b.spec] });
  await Promise.all([a.end, b.end]);
  assert.deepEqual(steps.map((s) => [s.sequences, s.tokens, s.prefillTokens]), [[1, 4, 4], [1, 4, 4]]);
  const elapsed = performance.now() - t0;
  for (const s of steps) assert.ok(s.ms >= 0 && s.ms <= elapsed, `${s.ms} of ${elapsed}`);
  assert.equal(loop.stats().steps, 2);
  await loop.close();
});

test('prompt scoring: a row per prompt position (but the last) in order, from position 0; then generation', async () => {
  const ctx = new Ctx(2);
  const loop = new EngineLoop(ctx, { maxWaiting: 2, nBatch: 16 });
  // A generating sequence first, so scoring rows follow a generation row in the same batch.
  const g = seq([1, 2], 4);
  loop.submit({ sequences: [g.spec] });
  while (g.tokens.length < 1) await turn();
  const scored: [number, number][] = [];
  const s = seq([3, 4, 5, 6], 1, { scorePrompt: (pos, row) => scored.push([pos, row[0]]) });
  loop.submit({ sequences: [s.spec] });
  assert.equal(await s.end, 'length');
  assert.deepEqual(s.tokens, [10]);
  // Row 0 of the shared batch is g's generation row: scoring rows are 1, 2, 3.
  assert.deepEqual(scored, [[0, 1], [1, 2], [2, 3]]);
  const shared = ctx.batches.find((b) => b.tokens.length === 5)!;
  assert.deepEqual(shared.want, [1, 1, 1, 1, 1]);
  await g.end;
  await loop.close();
});

test('a scoring sequence never reuses the slot cache; a plain one does unless cachePrompt is false', async () => {
  const ctx = new Ctx(1);
  const loop = new EngineLoop(ctx, { maxWaiting: 2, nBatch: 16 });
  const cached: number[] = [];
  const run = async (o: Partial<SequenceSpec>) => {
    const r = seq([1, 2, 3, 4, 5], 1, { onCached: (n) => cached.push(n), ...o });
    loop.submit({ sequences: [r.spec] });
    await r.end;
  };
  await run({});
  await run({});
  await run({ cachePrompt: false });
  await run({ scorePrompt: () => {} });
  assert.deepEqual(cached, [0, 4, 0, 0]);
  await loop.close();
});

test('generated tokens enter the slot cache: a follow-up prompt reuses prompt and reply', async () => {
  const ctx = new Ctx(1);
  const loop = new EngineLoop(ctx, { maxWaiting: 2, nBatch: 16 });
  const a = seq([1, 2, 3], 3);
  loop.submit({ sequences: [a.spec] });
  await a.end;
  // The cache holds 1 2 3 10 11 (the last pick, 12, was never decoded).
  let reuse = -1;
  const b = seq([1, 2, 3, 10, 11, 99], 1, { onCached: (n) => (reuse = n) });
  loop.submit({ sequences: [b.spec] });
  await b.end;
  assert.equal(reuse, 5);
  assert.deepEqual(ctx.batches.at(-1)!.tokens, [99]);
  await loop.close();
});

test('max_tokens 0 ends with length once the prompt is in, without sampling', async () => {
  const ctx = new Ctx(1);
  const loop = new EngineLoop(ctx, { maxWaiting: 1, nBatch: 8 });
  let picks = 0;
  const a = seq([1, 2], 0, { pick: () => (picks++, { token: 1 }) });
  loop.submit({ sequences: [a.spec] });
  assert.equal(await a.end, 'length');
  assert.equal(picks, 0);
  assert.deepEqual(a.tokens, []);
  await loop.close();
});

test('a throwing pick, scorePrompt or onToken ends that sequence with its error; others go on', async () => {
  const ctx = new Ctx(4);
  const loop = new EngineLoop(ctx, { maxWaiting: 4, nBatch: 16 });
  const boom = new Error('boom');
  const p = seq([1, 2], 5, { pick: () => { throw boom; } });
  const s = seq([1, 2, 3], 5, { scorePrompt: () => { throw 'not an Error'; } });
  const t = seq([1, 2], 5, { onToken: () => { throw boom; } });
  const ok = seq([7, 8], 3);
  for (const r of [p, s, t, ok]) loop.submit({ sequences: [r.spec] });
  assert.equal(await p.end, 'error');
  assert.equal(p.ends[0][1], boom);
  assert.equal(await s.end, 'error');
  assert.equal(s.ends[0][1]?.message, 'not an Error');
  assert.equal(await t.end, 'error');
  assert.equal(t.ends[0][1], boom);
  assert.equal(await ok.end, 'length');
  assert.deepEqual(ok.tokens, [10, 11, 12]);
  for (const r of [p, s, t, ok]) assert.equal(r.ends.length, 1);
  await loop.close();
});

test('a decode that resolves without logits ends its sequences with an error, onError or not', async () => {
  for (const withHandler of [true, false]) {
    const ctx = new Ctx(1);
    const errors: Error[] = [];
    const loop = new EngineLoop(ctx, { maxWaiting: 1, nBatch: 8, ...(withHandler ? { onError: (e: Error) => errors.push(e) } : {}) });
    ctx.next = 'null';
    const a = seq([1, 2], 3);
    loop.submit({ sequences: [a.spec] });
    assert.equal(await a.end, 'error');
    assert.equal(a.ends[0][1]?.message, 'decode returned no logits');
    if (withHandler) assert.deepEqual(errors.map((e) => e.message), ['decode returned no logits']);
    // A failure without onError also keeps the loop serving.
    ctx.next = withHandler ? null : 'fail';
    const b = seq([1, 2], 3);
    loop.submit({ sequences: [b.spec] });
    assert.equal(await b.end, withHandler ? 'length' : 'error');
    const c = seq([1, 2], 2);
    loop.submit({ sequences: [c.spec] });
    assert.equal(await c.end, 'length');
    await loop.close();
  }
});

test('a context whose truncate throws, without an onError handler, still serves', async () => {
  const ctx = new Ctx(1);
  const loop = new EngineLoop(ctx, { maxWaiting: 1, nBatch: 8 });
  ctx.truncateThrows = true;
  const a = seq([1, 2], 2);
  loop.submit({ sequences: [a.spec] });
  assert.equal(await a.end, 'length');
  await loop.close();
});

test('a context whose truncate throws reports it through onError and keeps serving', async () => {
  const ctx = new Ctx(1);
  const errors: string[] = [];
  const loop = new EngineLoop(ctx, { maxWaiting: 1, nBatch: 8, onError: (e) => errors.push(e.message) });
  ctx.truncateThrows = true;
  const a = seq([1, 2], 2);
  loop.submit({ sequences: [a.spec] });
  assert.equal(await a.end, 'length');
  assert.ok(errors.includes('truncate failed on purpose'), `${errors}`);
  await loop.close();
});

test('a sequence that ends early frees its slot while the rest of its job runs; the job counts until all end', async () => {
  const ctx = new Ctx(3);
  const loop = new EngineLoop(ctx, { maxWaiting: 2, nBatch: 16 });
  const short = seq([1, 2], 50, { stopAfter: 2 });
  const long = seq([1, 2], 400);
  loop.submit({ sequences: [short.spec, long.spec] });
  assert.equal(await short.end, 'stop');
  for (let i = 0; i < 3; i++) await turn();
  const st = loop.stats();
  assert.ok(long.tokens.length < 400);
  assert.equal(st.slotsBusy, 1, 'the stopped sequence gave its slot back');
  assert.equal(st.running, 1, 'the job still runs');
  // A job of two sequences fits now (3 slots, 1 busy) and runs beside the long one.
  const x = seq([3], 2);
  const y = seq([4], 2);
  loop.submit({ sequences: [x.spec, y.spec] });
  await Promise.all([x.end, y.end]);
  assert.ok(long.tokens.length < 400, 'admitted before the long sequence ended');
  await long.end;
  await loop.close();
});

test('cancelling a job after one of its sequences ended reports each end once', async () => {
  const ctx = new Ctx(2);
  const loop = new EngineLoop(ctx, { maxWaiting: 2, nBatch: 16 });
  const short = seq([1], 1);
  const long = seq([1], 400);
  const h = loop.submit({ sequences: [short.spec, long.spec] });
  await short.end;
  h.cancel();
  assert.equal(await long.end, 'cancelled');
  for (let i = 0; i < 3; i++) await turn();
  assert.deepEqual(short.ends.map((e) => e[0]), ['length']);
  assert.deepEqual(long.ends.map((e) => e[0]), ['cancelled']);
  assert.equal(loop.stats().slotsBusy, 0);
  await loop.close();
});

test('after a cancel made inside onToken nothing more is sampled or handed out', async () => {
  const ctx = new Ctx(1);
  const loop = new EngineLoop(ctx, { maxWaiting: 1, nBatch: 8 });
  let handle!: { cancel(): void };
  let picks = 0;
  const a = seq([1, 2], 100, {
    pick: () => ({ token: 10 + picks++ }),
    onToken: (p) => {
      a.tokens.push(p.token);
      if (a.tokens.length === 3) handle.cancel();
      return true;
    },
  });
  handle = loop.submit({ sequences: [a.spec] });
  assert.equal(await a.end, 'cancelled');
  for (let i = 0; i < 3; i++) await turn();
  assert.deepEqual(a.tokens, [10, 11, 12]);
  // The decode in flight at the cancel returns a row for it: dropped unsampled.
  assert.equal(picks, 3);
  await loop.close();
});

test('pipelining: when a token is handed out, the decode of the next step has already started', async () => {
  const ctx = new Ctx(1);
  const loop = new EngineLoop(ctx, { maxWaiting: 1, nBatch: 8 });
  const seen: number[] = [];
  const a = seq([1, 2], 4, { onToken: (p) => (seen.push(ctx.batches.length), a.tokens.push(p.token), true) });
  loop.submit({ sequences: [a.spec] });
  await a.end;
  // Token k (from decode k) is delivered while decode k + 1 runs; the last one ends the sequence, no next decode.
  assert.deepEqual(seen, [2, 3, 4, 4]);
  await loop.close();
});

test('the queue is FIFO: a small job behind a waiting big one waits too, and counts as waiting', async () => {
  const ctx = new Ctx(2);
  const release = ctx.holdDecodes();
  const loop = new EngineLoop(ctx, { maxWaiting: 1, nBatch: 8 });
  const a = seq([1], 2);
  loop.submit({ sequences: [a.spec] });
  await turn();
  // One slot free; the two-sequence job waits for both.
  const b1 = seq([1], 1);
  const b2 = seq([1], 1);
  loop.submit({ sequences: [b1.spec, b2.spec] });
  // A one-sequence job would fit the free slot, but it is behind b: a second waiting job.
  assert.throws(() => loop.submit({ sequences: [seq([1], 1).spec] }), QueueFullError);
  release();
  await Promise.all([a.end, b1.end, b2.end]);
  await loop.close();
});

test('onAdmit gets the time spent waiting; onCached gets the reused prefix', async () => {
  const ctx = new Ctx(1);
  const release = ctx.holdDecodes();
  const loop = new EngineLoop(ctx, { maxWaiting: 2, nBatch: 8 });
  const a = seq([1, 2, 3], 1);
  loop.submit({ sequences: [a.spec] });
  const waits: number[] = [];
  const cached: number[] = [];
  const t0 = performance.now();
  const b = seq([1, 2, 3, 4], 1, { onCached: (n) => cached.push(n) });
  loop.submit({ sequences: [b.spec], onAdmit: (ms) => waits.push(ms) });
  await new Promise((r) => setTimeout(r, 40));
  release();
  await b.end;
  assert.equal(waits.length, 1);
  assert.ok(waits[0] >= 30 && waits[0] <= performance.now() - t0, `${waits[0]}`);
  assert.deepEqual(cached, [3]);
  await loop.close();
});

test('idle() resolves only once queued and running jobs are done', async () => {
  const ctx = new Ctx(1);
  const loop = new EngineLoop(ctx, { maxWaiting: 2, nBatch: 8 });
  const a = seq([1], 20);
  const b = seq([1], 20);
  loop.submit({ sequences: [a.spec] });
  loop.submit({ sequences: [b.spec] });
  // Called before the loop admitted anything: both jobs are still queued.
  await loop.idle(1);
  assert.equal(a.ends.length, 1);
  assert.equal(b.ends.length, 1);
  await loop.close();
});

test('idle() waits for a running job with nothing queued behind it', async () => {
  const ctx = new Ctx(1);
  const release = ctx.holdDecodes();
  const loop = new EngineLoop(ctx, { maxWaiting: 2, nBatch: 8 });
  const a = seq([1], 3);
  loop.submit({ sequences: [a.spec] });
  await turn();
  assert.equal(loop.stats().waiting, 0); // admitted: its first decode is held
  let idle = false;
  const done = loop.idle(1).then(() => (idle = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(idle, false);
  release();
  await done;
  assert.deepEqual(a.ends.map(([r]) => r), ['length']);
  await loop.close();
});

test('close() cancels running jobs and refuses new ones', async () => {
  const ctx = new Ctx(1, 10_000);
  const loop = new EngineLoop(ctx, { maxWaiting: 2, nBatch: 8 });
  const a = seq([1], 5000);
  loop.submit({ sequences: [a.spec] });
  while (a.tokens.length < 2) await turn();
  await loop.close();
  assert.equal(await a.end, 'cancelled');
  assert.ok(a.tokens.length < 100);
  assert.throws(() => loop.submit({ sequences: [seq([1], 1).spec] }), ShuttingDownError);
});

test('--max-queue 0 still serves: jobs the free slots will take pass through, one more is refused', async () => {
  const ctx = new Ctx(2);
  const loop = new EngineLoop(ctx, { maxWaiting: 0, nBatch: 8 });
  const a = seq([1], 2);
  const b = seq([2], 2);
  // Both are submitted before the loop's next turn admits anything: a still sits in the
  // queue when b comes, yet a and b together fit the two free slots.
  loop.submit({ sequences: [a.spec] });
  loop.submit({ sequences: [b.spec] });
  assert.equal(loop.stats().waiting, 2);
  assert.throws(() => loop.submit({ sequences: [seq([3], 1).spec] }), QueueFullError);
  assert.deepEqual(await Promise.all([a.end, b.end]), ['length', 'length']);
  assert.deepEqual([a.tokens.length, b.tokens.length], [2, 2]);
  await loop.close();
});
