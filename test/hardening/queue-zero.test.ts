// --max-queue 0 means "no waiting": a job is served when free slots take it at once and
// refused (QueueFullError -> 429) only when it would have to wait. Before, every job
// passed through the bounded queue, so capacity 0 refused everything, even when idle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineLoop, QueueFullError } from '../../server/scheduler/engine-loop.js';
import type { DecodeBatch } from '../../server/engine/types.js';
import type { DecodeContext, EndReason, SequenceSpec } from '../../server/scheduler/types.js';

const NV = 4;

/** Decodes instantly unless held; checks nothing (engine-loop.test.ts covers positions). */
class HeldContext implements DecodeContext {
  hold: Promise<void> | null = null;
  constructor(readonly nSeq: number, readonly nCtx = 64) {}
  async decode(b: DecodeBatch): Promise<Float32Array> {
    if (this.hold) await this.hold;
    let rows = 0;
    for (const w of b.wantLogits) rows += w;
    return new Float32Array(rows * NV);
  }
  truncate(): void {}
}

function seq(maxNew: number): { spec: SequenceSpec; end: Promise<EndReason> } {
  let resolve!: (r: EndReason) => void;
  const end = new Promise<EndReason>((r) => (resolve = r));
  return {
    end,
    spec: { prompt: [1, 2], maxNewTokens: maxNew, pick: () => ({ token: 1 }), isEndToken: () => false, onToken: () => true, onEnd: (r) => resolve(r) },
  };
}

test('capacity 0: an idle loop serves; a job that would wait is refused; freed slots serve again', async () => {
  const ctx = new HeldContext(2);
  const loop = new EngineLoop(ctx, { maxWaiting: 0, nBatch: 8 });
  const a = seq(2);
  loop.submit({ sequences: [a.spec] });
  assert.equal(await a.end, 'length');

  let release!: () => void;
  ctx.hold = new Promise((r) => (release = r));
  const b = seq(3);
  const c = seq(3);
  // Both fit the two free slots, even submitted before the loop has admitted either.
  loop.submit({ sequences: [b.spec] });
  loop.submit({ sequences: [c.spec] });
  assert.throws(() => loop.submit({ sequences: [seq(1).spec] }), QueueFullError);
  ctx.hold = null;
  release();
  assert.equal(await b.end, 'length');
  assert.equal(await c.end, 'length');
  const d = seq(1);
  loop.submit({ sequences: [d.spec, seq(1).spec] });
  assert.equal(await d.end, 'length');
  await loop.close();
});

test('capacity 1 with one slot: one job runs, one waits, the third is refused (FIFO order kept)', async () => {
  const ctx = new HeldContext(1);
  let release!: () => void;
  ctx.hold = new Promise((r) => (release = r));
  const loop = new EngineLoop(ctx, { maxWaiting: 1, nBatch: 8 });
  const a = seq(2);
  const b = seq(2);
  loop.submit({ sequences: [a.spec] });
  loop.submit({ sequences: [b.spec] });
  assert.throws(() => loop.submit({ sequences: [seq(1).spec] }), QueueFullError);
  ctx.hold = null;
  release();
  assert.equal(await a.end, 'length');
  assert.equal(await b.end, 'length');
  await loop.close();
});
