// runProfile and compareSpeed against a recording fake context (no engine needed): the
// windows of n_ctx and batches of n_batch it decodes, positions and logits flags, counting
// switched on and off around the run, aborts, and what it returns. Plus progressLine.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Context } from '../../server/engine/engine.js';
import type { DecodeBatch } from '../../server/engine/types.js';
import { compareSpeed, progressLine, runProfile } from '../../server/profiler/profile-run.js';

class FakeCtx {
  log: string[] = [];
  counting = false;
  rows = 0;
  layers: number[][] = [[1, 2], [3, 4]];
  predictor?: { truePositive: number; falsePositive: number; falseNegative: number }[];
  onDecode?: (b: DecodeBatch) => Promise<void> | void;
  truncate(seq: number, p0: number) { this.log.push(`truncate ${seq} ${p0}`); }
  setActivationCounting(on: boolean) { this.counting = on; this.log.push(`counting ${on}`); }
  resetActivationCounts() { this.rows = 0; this.log.push('reset'); }
  activationCounts() { return { rows: this.rows, layers: this.layers, predictor: this.predictor }; }
  async decode(b: DecodeBatch) {
    this.log.push(`decode [${[...b.tokens]}] pos [${[...b.positions]}] seq [${[...b.seqIds]}] logits [${[...b.wantLogits]}]`);
    if (this.counting) this.rows += b.tokens.length;
    await this.onDecode?.(b);
  }
}
const ctx = (f: FakeCtx) => f as unknown as Context;

test('tokens go in windows of n_ctx (cache cleared between) and batches of n_batch, logits for each batch\'s last', async () => {
  const f = new FakeCtx();
  const progress: string[] = [];
  const r = await runProfile(ctx(f), Int32Array.from([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]), { nCtx: 4, nBatch: 3, onProgress: (p) => progress.push(`${p.done}/${p.total}`) });
  assert.deepEqual(f.log, [
    'counting true', 'reset',
    'truncate 0 0', 'decode [10,11,12] pos [0,1,2] seq [0,0,0] logits [0,0,1]', 'decode [13] pos [3] seq [0] logits [1]',
    'truncate 0 0', 'decode [14,15,16] pos [0,1,2] seq [0,0,0] logits [0,0,1]', 'decode [17] pos [3] seq [0] logits [1]',
    'truncate 0 0', 'decode [18,19] pos [0,1] seq [0,0] logits [0,1]',
    'truncate 0 0', 'counting false',
  ]);
  assert.deepEqual(progress, ['3/10', '4/10', '7/10', '8/10', '10/10']);
  assert.deepEqual(r.counts.map((c) => [...c]), [[1, 2], [3, 4]]);
  assert.ok(r.counts[0] instanceof Float64Array);
  assert.equal(r.tokens, 10);
  assert.equal(r.interrupted, false);
  assert.equal(r.predictor, undefined);
  assert.ok(r.elapsedMs >= 0);
});

test('a token count that fills the last window exactly opens no extra window; each decode gets its own copy of its tokens', async () => {
  const f = new FakeCtx();
  const tokens = Int32Array.of(1, 2, 3, 4);
  const seen: Int32Array[] = [];
  f.onDecode = (b) => void seen.push(b.tokens);
  await runProfile(ctx(f), tokens, { nCtx: 2, nBatch: 2 });
  assert.deepEqual(f.log.filter((l) => l.startsWith('truncate')).length, 3);
  assert.ok(seen.every((t) => t.buffer !== tokens.buffer), 'not a view of the caller\'s array');
});

test('predictor agreement is kept (copied) only when it covers every layer', async () => {
  const f = new FakeCtx();
  f.predictor = [{ truePositive: 1, falsePositive: 2, falseNegative: 3 }, { truePositive: 4, falsePositive: 5, falseNegative: 6 }];
  const r = await runProfile(ctx(f), Int32Array.of(1, 2), { nCtx: 8, nBatch: 8 });
  assert.deepEqual(r.predictor, f.predictor);
  assert.notEqual(r.predictor![0], f.predictor[0]);
  f.predictor = [f.predictor[0]];
  assert.equal((await runProfile(ctx(f), Int32Array.of(1, 2), { nCtx: 8, nBatch: 8 })).predictor, undefined);
});

test('an abort stops after the current batch and keeps what was counted; counting goes off on errors too', async () => {
  const f = new FakeCtx();
  const ac = new AbortController();
  f.onDecode = () => ac.abort();
  const r = await runProfile(ctx(f), Int32Array.of(1, 2, 3, 4, 5), { nCtx: 2, nBatch: 1, signal: ac.signal });
  assert.equal(r.tokens, 1);
  assert.equal(r.interrupted, true);
  assert.equal(f.log.filter((l) => l.startsWith('decode')).length, 1);
  // The engine disagreeing about the rows it counted is an error, and counting is switched off.
  const g = new FakeCtx();
  g.onDecode = () => { g.rows += 1; };
  await assert.rejects(runProfile(ctx(g), Int32Array.of(1, 2, 3), { nCtx: 4, nBatch: 2 }), /^Error: the engine counted 5 rows but 3 tokens were decoded$/);
  assert.equal(g.counting, false);
  for (const o of [{ nCtx: 0, nBatch: 1 }, { nCtx: 1, nBatch: 0 }, { nCtx: NaN, nBatch: 1 }]) {
    await assert.rejects(runProfile(ctx(new FakeCtx()), Int32Array.of(1), o), /n_ctx and n_batch must be positive/);
  }
  assert.deepEqual((await runProfile(ctx(new FakeCtx()), new Int32Array(0), { nCtx: 1, nBatch: 1 })).interrupted, false);
});

/** Replaces performance.now with a clock the fake decodes advance, for exact rates. */
function fakeClock(): { advance: (ms: number) => void; restore: () => void } {
  let t = 1000;
  const had = Object.getOwnPropertyDescriptor(performance, 'now');
  Object.defineProperty(performance, 'now', { value: () => t, configurable: true, writable: true });
  return {
    advance: (ms) => void (t += ms),
    restore: () => (had ? Object.defineProperty(performance, 'now', had) : delete (performance as { now?: unknown }).now),
  };
}

test('compareSpeed: a warm-up pass, then off/on alternated three times, the best rate of each', async () => {
  const f = new FakeCtx();
  const clock = fakeClock();
  try {
    // Per pass (two decodes of 2 tokens) the decode times below; counting passes slower.
    const plainMs = [1, 10, 8, 5]; // warm-up (untimed), then the three timed passes
    const countMs = [20, 16, 25];
    let pass = -1;
    let decodes = 0;
    f.onDecode = () => {
      if (decodes++ % 2 === 0) pass++;
      const rep = Math.floor((pass - 1) / 2);
      clock.advance(pass === 0 ? plainMs[0] : f.counting ? countMs[rep] : plainMs[1 + rep]);
    };
    const r = await compareSpeed(ctx(f), Int32Array.of(1, 2, 3, 4), { nCtx: 4, nBatch: 2, onProgress: () => assert.fail('compareSpeed reports no progress') });
    const switches = f.log.filter((l) => l.startsWith('counting'));
    assert.deepEqual(switches, ['counting false', 'counting false', 'counting true', 'counting false', 'counting true', 'counting false', 'counting true', 'counting false']);
    assert.equal(decodes, 7 * 2);
    // Best plain pass: 2 x 5 ms for 4 tokens; best counting pass: 2 x 16 ms.
    assert.deepEqual(r, { plain: 4000 / 10, counting: 4000 / 32 });
    // A zero-time pass reports rate 0 rather than Infinity.
    const g = new FakeCtx();
    assert.deepEqual(await compareSpeed(ctx(g), Int32Array.of(1), { nCtx: 1, nBatch: 1 }), { plain: 0, counting: 0 });
    // runProfile's elapsed time is the clock's.
    const h = new FakeCtx();
    h.onDecode = () => clock.advance(7);
    const seenMs: number[] = [];
    await runProfile(ctx(h), Int32Array.of(1, 2), { nCtx: 8, nBatch: 1, onProgress: (p) => seenMs.push(p.elapsedMs) });
    assert.deepEqual(seenMs, [7, 14]);
    assert.equal((await runProfile(ctx(h), Int32Array.of(1, 2, 3), { nCtx: 8, nBatch: 1 })).elapsedMs, 21);
  } finally {
    clock.restore();
  }
});

test('progressLine: bar, percentage, counts, rate and ETA in minutes:seconds', () => {
  assert.equal(progressLine({ done: 2600, total: 5000, elapsedMs: 3200 }), `[${'#'.repeat(16)}${'.'.repeat(14)}]  52.0%  2600/5000 tokens  812.5 tok/s  ETA 0:02`);
  assert.equal(progressLine({ done: 100, total: 1000, elapsedMs: 10000 }, 10), '[#.........]  10.0%  100/1000 tokens  10.0 tok/s  ETA 1:30');
  assert.equal(progressLine({ done: 1000, total: 1000, elapsedMs: 10000 }, 4), '[####] 100.0%  1000/1000 tokens  100.0 tok/s  ETA 0:00');
  assert.equal(progressLine({ done: 5, total: 10, elapsedMs: 0 }, 4), '[##..]  50.0%  5/10 tokens  0.0 tok/s  ETA --:--');
  assert.equal(progressLine({ done: 0, total: 0, elapsedMs: 5 }, 4), '[####] 100.0%  0/0 tokens  0.0 tok/s  ETA --:--');
});
