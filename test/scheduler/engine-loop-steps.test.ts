// Engine-loop behaviours found missing by a mutation review: a decode that rejects
// at once in the pipelined step, prefill chunks sharing a step with generation rows,
// and the KV-usage figure. Same controllable-context approach as engine-loop.test.ts:
// the real engine cannot be made to fail on cue.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineLoop } from '../../server/scheduler/engine-loop.js';
import type { DecodeBatch } from '../../server/engine/types.js';
import type { DecodeContext, EndReason, SequenceSpec } from '../../server/scheduler/types.js';

const NV = 4;

/** Checks positions like the engine does; `rejectOnStep` / `throwOnStep` make that decode fail before the loop awaits it. */
class StepContext implements DecodeContext {
  readonly lengths: number[];
  readonly batches: { seqIds: number[]; positions: number[] }[] = [];
  rejectOnStep = -1;
  throwOnStep = -1;
  constructor(readonly nSeq: number, readonly nCtx: number) {
    this.lengths = new Array(nSeq).fill(0);
  }
  decode(b: DecodeBatch): Promise<Float32Array> {
    const step = this.batches.length;
    this.batches.push({ seqIds: [...b.seqIds], positions: [...b.positions] });
    if (step === this.throwOnStep) throw new Error(`decode ${step} threw`);
    // An already-rejected promise: the failure exists before the loop awaits it.
    if (step === this.rejectOnStep) return Promise.reject(new Error(`decode ${step} rejected`));
    for (let j = 0; j < b.tokens.length; j++) {
      const s = b.seqIds[j];
      if (b.positions[j] !== this.lengths[s]) return Promise.reject(new Error(`seq ${s}: position ${b.positions[j]}, cache holds ${this.lengths[s]}`));
      this.lengths[s]++;
    }
    let rows = 0;
    for (const w of b.wantLogits) rows += w;
    return Promise.resolve(new Float32Array(rows * NV));
  }
  truncate(seq: number, p0: number): void {
    this.lengths[seq] = Math.min(this.lengths[seq], p0);
  }
}

function seqSpec(promptLen: number, maxNew: number): { tokens: number[]; end: Promise<[EndReason, Error | undefined]>; spec: SequenceSpec } {
  let resolve!: (r: [EndReason, Error | undefined]) => void;
  const end = new Promise<[EndReason, Error | undefined]>((r) => (resolve = r));
  const tokens: number[] = [];
  const spec: SequenceSpec = {
    prompt: Array.from({ length: promptLen }, (_, k) => k % NV),
    maxNewTokens: maxNew,
    pick: () => ({ token: 1 }),
    isEndToken: () => false,
    onToken: (p) => (tokens.push(p.token), true),
    onEnd: (r, e) => resolve([r, e]),
  };
  return { tokens, end, spec };
}

/** Fails the test if the process sees an unhandled rejection while `fn` runs. */
async function noUnhandled(fn: () => Promise<void>): Promise<void> {
  const seen: unknown[] = [];
  const onUnhandled = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    await fn();
    // Let any late rejection surface before judging.
    await new Promise((r) => setTimeout(r, 20));
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  assert.deepEqual(seen, [], 'no unhandled rejection');
}

for (const [how, key] of [['rejects at once', 'rejectOnStep'], ['throws', 'throwOnStep']] as const) {
  test(`a pipelined decode that ${how} ends its sequences with error, no unhandled rejection`, async () => {
    await noUnhandled(async () => {
      const ctx = new StepContext(2, 64);
      const errors: Error[] = [];
      const loop = new EngineLoop(ctx, { maxWaiting: 4, nBatch: 8, onError: (e) => errors.push(e) });
      // Step 0 prefills, steps 1.. are launched right after a completion: the pipelined path.
      ctx[key] = 3;
      const a = seqSpec(2, 10);
      const b = seqSpec(3, 10);
      loop.submit({ sequences: [a.spec, b.spec] });
      const [ra, ea] = await a.end;
      const [rb] = await b.end;
      assert.equal(ra, 'error');
      assert.equal(rb, 'error');
      assert.match(String(ea?.message), /decode 3/);
      assert.equal(a.tokens.length, 3, 'tokens of the steps before the failure were delivered');
      assert.equal(errors.length, 1);
      // The loop keeps serving.
      const c = seqSpec(2, 2);
      loop.submit({ sequences: [c.spec] });
      assert.equal((await c.end)[0], 'length');
      await loop.close();
    });
  });
}

test('a prefill chunk takes only the room left after the generation rows of the same step', async () => {
  const nBatch = 6;
  const ctx = new StepContext(3, 128);
  const loop = new EngineLoop(ctx, { maxWaiting: 4, nBatch });
  const a = seqSpec(2, 40);
  const b = seqSpec(2, 40);
  loop.submit({ sequences: [a.spec] });
  loop.submit({ sequences: [b.spec] });
  while (a.tokens.length < 2) await new Promise((r) => setImmediate(r));
  // A long prompt arrives while two sequences generate: its chunks get nBatch - 2 tokens.
  const c = seqSpec(17, 2);
  loop.submit({ sequences: [c.spec] });
  assert.equal((await c.end)[0], 'length');
  for (const batch of ctx.batches) assert.ok(batch.seqIds.length <= nBatch, `batch of ${batch.seqIds.length} > nBatch`);
  const shared = ctx.batches.filter((x) => x.seqIds.includes(2) && x.seqIds.includes(0) && x.seqIds.filter((s) => s === 2).length > 1);
  assert.ok(shared.length >= 3, 'the prompt was prefilled in chunks next to generation rows');
  for (const x of shared) assert.equal(x.seqIds.length, nBatch, 'each shared step is full');
  assert.deepEqual(shared[0].seqIds.filter((s) => s === 2).length, nBatch - 2);
  await loop.close();
});

test('kvUsage counts the positions of every slot over slots x nCtx', async () => {
  const ctx = new StepContext(4, 50);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const loop = new EngineLoop(ctx, { maxWaiting: 4, nBatch: 32 });
  assert.equal(loop.stats().kvUsage, 0);
  // From the fourth decode on, steps wait on a gate, so the cache holds still while measured.
  const specs = [seqSpec(5, 100), seqSpec(7, 100)];
  const origDecode = ctx.decode.bind(ctx);
  let steps = 0;
  ctx.decode = async (b) => {
    if (++steps > 3) await gate;
    return origDecode(b);
  };
  loop.submit({ sequences: [specs[0].spec] });
  loop.submit({ sequences: [specs[1].spec] });
  while (steps < 4) await new Promise((r) => setImmediate(r));
  // Steps 1..3 done: prompt (5 and 7) + 2 generation tokens each are in the cache.
  const stats = loop.stats();
  assert.equal(stats.slotsBusy, 2);
  assert.equal(stats.kvUsage, (5 + 2 + 7 + 2) / (4 * 50));
  release();
  await loop.close();
});
