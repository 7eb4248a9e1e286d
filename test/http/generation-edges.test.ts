// Generation (http/generate.ts) details generation.test.ts leaves out: the summary of a
// request not yet admitted, tokens per second when every token came at once, finish
// reasons of choices that end differently, queue time in the metrics, a listener without
// onDelta, failed only on errors, logprob offsets when a stop string holds back part of
// a piece's text, and the grammar path's sampler options.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generation } from '../../server/http/generate.js';
import { EngineLoop } from '../../server/scheduler/engine-loop.js';
import { Metrics } from '../../server/observability/metrics.js';
import type { SequenceSpec } from '../../server/scheduler/types.js';
import { PIECES, SETTINGS, metricSum, plan, run, scripted } from './scripted-generation.js';

test('summary before admission: no tokens, no timings, finish reason none', async () => {
  const s = scripted([1]);
  const loop = new EngineLoop(s.rt.ctx, { maxWaiting: 2, nBatch: 64 });
  const g = new Generation(loop, s.rt, plan({ n: 2 }), new Metrics({ defaultMetrics: false }), {});
  // Admission happens on the loop's next turn.
  assert.deepEqual(g.summary(), { promptTokens: 2, completionTokens: 0, ttftMs: null, queueMs: null, tokensPerSecond: null, finishReason: 'none' });
  await g.done;
  assert.equal(g.summary().finishReason, 'stop');
  await loop.close();
});

test('finish reasons of choices that end differently are listed in choice order', async () => {
  // nCtx 16: the first prompt leaves room for 2 tokens (length), the second reaches EOS (stop).
  const { g } = await run(scripted([1, 1, 1]), plan({ prompts: [new Array(14).fill(1), [1]] }));
  assert.deepEqual(g.choices.map((c) => c.finishReason), ['length', 'stop']);
  assert.equal(g.summary().finishReason, 'length,stop');
});

test('on a clock that does not move, tokens per second is null (no interval to divide by)', async () => {
  const real = performance.now;
  performance.now = () => 5000;
  try {
    const { g } = await run(scripted([1, 1, 1]), plan({ n: 2, maxTokens: 3 }));
    assert.equal(g.completionTokens, 6);
    assert.equal(g.summary().tokensPerSecond, null);
  } finally {
    performance.now = real;
  }
});

test('queue time: a request that waits for slots reports it in ms, and the histogram gets it in seconds', async () => {
  const real = performance.now;
  let clock = 1000;
  performance.now = () => clock;
  try {
    const s = scripted([1, 1]);
    const decode = s.rt.ctx.decode.bind(s.rt.ctx);
    (s.rt.ctx as { decode: typeof decode }).decode = (b) => {
      clock += 100;
      return decode(b);
    };
    const loop = new EngineLoop(s.rt.ctx, { maxWaiting: 2, nBatch: 64 });
    const m = new Metrics({ defaultMetrics: false });
    // The first request takes all four slots; the second waits for them.
    const first = new Generation(loop, s.rt, plan({ n: 4, maxTokens: 2 }), m, {});
    const second = new Generation(loop, s.rt, plan({ maxTokens: 1 }), m, {});
    await Promise.all([first.done, second.done]);
    await loop.close();
    const q1 = first.summary().queueMs!;
    const q2 = second.summary().queueMs!;
    assert.equal(q1, 0);
    assert.ok(q2 >= 100, `${q2}`);
    assert.ok(Math.abs((await metricSum(m, 'queueTime')) - (q1 + q2) / 1000) < 1e-9);
  } finally {
    performance.now = real;
  }
});

test('a listener without onDelta still gets the whole reply; failed stays null unless a sequence errs', async () => {
  const s = scripted([1, 2, 3]);
  const loop = new EngineLoop(s.rt.ctx, { maxWaiting: 2, nBatch: 64 });
  const ends: string[] = [];
  const g = new Generation(loop, s.rt, plan({ maxTokens: 3 }), new Metrics({ defaultMetrics: false }), { onChoiceEnd: (c) => ends.push(c.text) });
  await g.done;
  await loop.close();
  assert.deepEqual(ends, ['abc']);
  assert.equal(g.choices[0].finishReason, 'length');
  assert.equal(g.failed, null);
  const eos = await run(scripted([1]), plan({}));
  assert.equal(eos.g.choices[0].finishReason, 'stop');
  assert.equal(eos.g.failed, null);
});

test('a sequence that ends in error without an Error object still marks the generation failed', async () => {
  // A loop that ends every sequence with 'error' and no error (the SequenceSpec contract allows it).
  const specs: SequenceSpec[] = [];
  const loop = { submit: (job: { sequences: SequenceSpec[] }) => (specs.push(...job.sequences), { cancel() {} }) } as unknown as EngineLoop;
  const g = new Generation(loop, scripted([]).rt, plan({}), new Metrics({ defaultMetrics: false }), {});
  specs[0].onEnd('error');
  await g.done;
  assert.ok(g.failed instanceof Error);
  assert.equal(g.failed.message, 'generation failed');
});

test('logprob offsets: a stop-string prefix held back across two pieces lists only the pick whose text is shown', async () => {
  // a X X with stop "XY": the second X shows the first (offset 1) and holds itself (offset 2) until the end.
  const { g, deltas } = await run(scripted([1, 4, 4]), plan({ topLogprobs: 0, stop: ['XY'], maxTokens: 3 }));
  assert.equal(g.choices[0].text, 'aXX');
  assert.deepEqual(g.choices[0].picks.map((p) => p.token), [1, 4, 4]);
  assert.deepEqual(g.choices[0].offsets, [0, 1, 2]);
  assert.deepEqual(deltas.map((d) => [d.text, d.picks.length, d.offsets]), [['a', 1, [0]], ['X', 1, [1]], ['X', 1, [2]]]);
});

test('with a grammar the sampler gets the same options, and a token the grammar refuses fails the sequence', async () => {
  const withBytes = (s: ReturnType<typeof scripted>) => {
    s.rt.tokenizer.tokenBytes = (t) => new TextEncoder().encode(t === 0 ? '' : PIECES[t]);
    return s;
  };
  const s = withBytes(scripted([1, 2]));
  const { g } = await run(s, plan({ grammar: 'root ::= "ab"', topLogprobs: 2 }));
  assert.equal(g.choices[0].text, 'ab');
  assert.equal(g.choices[0].finishReason, 'stop');
  assert.deepEqual(s.pickers.map((p) => [p.settings, p.seed, p.prompt, p.topLogprobs]), [[SETTINGS, 100, [1, 2], 2]]);
  const bad = await run(withBytes(scripted([1, 3])), plan({ grammar: 'root ::= "ab"' }));
  assert.match(bad.g.failed?.message ?? '', /the sampler picked token 3, which the grammar does not allow/);
});
