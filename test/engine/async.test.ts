// Native work runs off the event loop: timers keep firing while a decode computes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Model, sequenceBatch } from '../../server/engine/engine.js';
import { tinyModel } from './models.js';

test('the event loop keeps running while a decode computes', async () => {
  const model = await Model.load(await tinyModel('bamboo', 'f32'));
  const ctx = await model.createContext({ nSeq: 1, nCtx: 512, nBatch: 512, threads: 1, backend: 'ref' });
  try {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const t0 = performance.now();
    // The reference backend is slow on purpose (one token at a time, no SIMD): long enough to observe.
    await ctx.decode(sequenceBatch(Array.from({ length: 400 }, (_, i) => 1 + (i % 50)), 0, 0));
    const ms = performance.now() - t0;
    clearInterval(timer);
    assert.ok(ms > 20, `decode took ${ms} ms; too short to judge`);
    assert.ok(ticks >= 3, `only ${ticks} timer ticks during a ${ms.toFixed(0)} ms decode`);
  } finally {
    ctx.dispose();
    model.dispose();
  }
});

test('errors thrown in native code become rejected promises, and the process carries on', async () => {
  const model = await Model.load(await tinyModel('llama', 'f32'));
  await assert.rejects(model.createContext({ nSeq: 0, nCtx: 8 }), /n_seq = 0 is outside/);
  await assert.rejects(model.createContext({ nSeq: 1, nCtx: 8, backend: 'gpu' as never }), /unknown backend 'gpu'/);
  await assert.rejects(model.createContext({ nSeq: 1000, nCtx: 4_000_000 }), /more than this machine's memory/);
  const ctx = await model.createContext({ nSeq: 1, nCtx: 8 });
  // Wrong argument types are refused synchronously by the binding and surface as rejections.
  await assert.rejects(ctx.decode({ tokens: new Int32Array(1), positions: new Int32Array(2), seqIds: new Int32Array(1), wantLogits: new Uint8Array(1) }), /same length/);
  ctx.dispose();
  await assert.rejects(ctx.decode(sequenceBatch([1], 0, 0)), /disposed/);
  model.dispose();
});
