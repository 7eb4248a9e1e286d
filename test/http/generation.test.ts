// Generation (http/generate.ts) with a scripted runtime and a real EngineLoop: prompt
// checks against the context, max_tokens cut to the room left, choice numbering and
// seeds, 429/503 mapping, metrics values, usage counters, the summary line, logprob
// picks and their offsets around stop strings, and prompt scoring rows.
// generate-text.test.ts covers the stop-string text itself.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generation } from '../../server/http/generate.js';
import { EngineLoop } from '../../server/scheduler/engine-loop.js';
import { Metrics } from '../../server/observability/metrics.js';
import { ApiError } from '../../server/http/errors.js';
import { EOS, SETTINGS, metricSum, metricValue, plan, run, scripted } from './scripted-generation.js';

function refused(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ApiError, `${err}`);
    return err;
  }
  assert.fail('expected a refusal');
}

test('prompts are checked against the context: empty, too long (which one), exactly one token of room', async () => {
  const s = scripted([]);
  const loop = new EngineLoop(s.rt.ctx, { maxWaiting: 2, nBatch: 64 });
  const m = new Metrics({ defaultMetrics: false });
  const empty = refused(() => new Generation(loop, s.rt, plan({ prompts: [[]], promptParam: 'messages' }), m, {}));
  assert.deepEqual([empty.status, empty.param, empty.code, empty.message], [400, 'messages', 'invalid_value', 'The prompt is empty after tokenisation.']);
  const long = refused(() => new Generation(loop, s.rt, plan({ prompts: [new Array(16).fill(1)] }), m, {}));
  assert.deepEqual([long.status, long.param, long.code], [400, 'prompt', 'context_length_exceeded']);
  assert.equal(long.message, "This model's maximum context length is 16 tokens, but the prompt is 16 tokens; at least one token must be left for the reply.");
  const second = refused(() => new Generation(loop, s.rt, plan({ prompts: [[1], new Array(20).fill(1)] }), m, {}));
  assert.equal(second.message, "This model's maximum context length is 16 tokens, but the prompt (prompt 1) is 20 tokens; at least one token must be left for the reply.");
  // 15 tokens leave one: accepted, and max_tokens is that one token.
  const { g } = await run(scripted([1, 1, 1]), plan({ prompts: [new Array(15).fill(1)] }), loop, m);
  assert.equal(g.choices[0].completionTokens, 1);
  assert.equal(g.choices[0].finishReason, 'length');
  assert.equal(g.choices[0].cut, false);
  await loop.close();
});

test('max_tokens: unset means the room left; more than the room is cut and flagged', async () => {
  const script = new Array(30).fill(1);
  const room = await run(scripted(script), plan({ prompts: [[1, 2, 3]] }));
  assert.equal(room.g.choices[0].completionTokens, 13);
  assert.equal(room.g.choices[0].cut, false);
  const over = await run(scripted(script), plan({ prompts: [[1, 2, 3]], maxTokens: 14 }));
  assert.equal(over.g.choices[0].completionTokens, 13);
  assert.equal(over.g.choices[0].cut, true);
  const exact = await run(scripted(script), plan({ prompts: [[1, 2, 3]], maxTokens: 13 }));
  assert.equal(exact.g.choices[0].cut, false);
  const small = await run(scripted(script), plan({ prompts: [[1, 2, 3]], maxTokens: 2 }));
  assert.equal(small.g.choices[0].completionTokens, 2);
  assert.equal(small.g.choices[0].text, 'aa');
});

test('choices are numbered prompt-major; each gets seed base + index, its own prompt and the topLogprobs asked for', async () => {
  const s = scripted([1]);
  const { g, ended } = await run(s, plan({ prompts: [[1, 2], [3]], n: 2, topLogprobs: 3 }));
  assert.deepEqual(g.choices.map((c) => [c.index, c.promptIndex]), [[0, 0], [1, 0], [2, 1], [3, 1]]);
  assert.deepEqual(s.pickers.map((p) => p.seed), [100, 101, 102, 103]);
  assert.deepEqual(s.pickers.map((p) => p.prompt), [[1, 2], [1, 2], [3], [3]]);
  assert.deepEqual(s.pickers.map((p) => p.topLogprobs), [3, 3, 3, 3]);
  assert.equal(s.pickers[0].settings, SETTINGS);
  assert.deepEqual(ended.sort(), [0, 1, 2, 3]);
  assert.equal(g.promptTokens, 3);
  assert.equal(g.completionTokens, 4);
  // Without a seed each request draws one (the choices still differ by their index).
  const r = scripted([1]);
  await run(r, plan({ n: 2, settings: { ...SETTINGS, seed: undefined } }));
  assert.equal(r.pickers[1].seed - r.pickers[0].seed, 1);
  assert.ok(Number.isInteger(r.pickers[0].seed) && r.pickers[0].seed >= 0 && r.pickers[0].seed < 2 ** 31);
});

test('a full queue is a 429 with Retry-After 1; a stopping loop a 503 with Retry-After 5; other errors pass through', async () => {
  const s = scripted([1, 1, 1]);
  let release!: () => void;
  s.hold.p = new Promise((r) => (release = r));
  const loop = new EngineLoop(s.rt.ctx, { maxWaiting: 0, nBatch: 64 });
  const m = new Metrics({ defaultMetrics: false });
  // Takes all four slots; it is still in the queue (admission happens on the loop's next turn).
  const first = new Generation(loop, s.rt, plan({ n: 4 }), m, {});
  const busy = refused(() => new Generation(loop, s.rt, plan({}), m, {}));
  assert.deepEqual([busy.status, busy.code, busy.headers], [429, 'queue_full', { 'retry-after': '1' }]);
  assert.equal(busy.message, 'The server is busy: 1 requests are already waiting. Retry later.');
  // More choices than slots: the loop's RangeError is not an ApiError.
  assert.throws(() => new Generation(loop, s.rt, plan({ n: 5 }), m, {}), RangeError);
  s.hold.p = null;
  release();
  await first.done;
  loop.stopAccepting();
  const stopping = refused(() => new Generation(loop, s.rt, plan({}), m, {}));
  assert.deepEqual([stopping.status, stopping.code, stopping.headers, stopping.message], [503, 'shutting_down', { 'retry-after': '5' }, 'The server is shutting down.']);
  await loop.close();
});

test('metrics: prompt, generated and cached tokens, and one sample per request or token in each histogram', async () => {
  const s = scripted([1, 2, 3]);
  const loop = new EngineLoop(s.rt.ctx, { maxWaiting: 2, nBatch: 64 });
  const m = new Metrics({ defaultMetrics: false });
  // Ten prompt tokens: a cached prefix must be 8 tokens long to choose a slot (slot-cache.ts).
  const P = [1, 2, 3, 4, 5, 6, 1, 2, 3, 4];
  await run(s, plan({ prompts: [P], n: 2, maxTokens: 3 }), loop, m);
  assert.equal(await metricValue(m, 'promptTokens'), 10);
  assert.equal(await metricValue(m, 'generatedTokens'), 6);
  assert.equal(await metricValue(m, 'ttft'), 1);
  assert.equal(await metricValue(m, 'queueTime'), 1);
  assert.equal(await metricValue(m, 'e2e'), 1);
  // Between consecutive tokens of one sequence: 2 per sequence.
  assert.equal(await metricValue(m, 'interToken'), 4);
  // The same prompt again: both choices find 9 tokens cached (the last is always decoded);
  // the request counts them once, the metric per sequence.
  const again = await run(s, plan({ prompts: [P], n: 2, maxTokens: 3 }), loop, m);
  assert.deepEqual(again.g.choices.map((c) => c.cachedTokens), [9, 9]);
  assert.equal(again.g.cachedTokens, 9);
  assert.equal(await metricValue(m, 'cachedPromptTokens'), 18);
  // cache_prompt false: nothing reused.
  const fresh = await run(s, plan({ prompts: [P], cachePrompt: false, maxTokens: 3 }), loop, m);
  assert.equal(fresh.g.cachedTokens, 0);
  await loop.close();
});

test('cachedTokens counts each prompt once (its first choice), not every choice', async () => {
  const s = scripted([1]);
  const loop = new EngineLoop(s.rt.ctx, { maxWaiting: 2, nBatch: 64 });
  const A = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5];
  const B = [5, 4, 3, 2, 1, 5, 4, 3, 2, 1, 5, 4];
  await run(s, plan({ prompts: [A, B], maxTokens: 1 }), loop);
  // Two slots hold A and B; the first choice of each prompt finds its cache, the second a fresh slot.
  const g = (await run(s, plan({ prompts: [A, B], n: 2, maxTokens: 1 }), loop)).g;
  assert.deepEqual(g.choices.map((c) => c.cachedTokens), [9, 0, 11, 0]);
  assert.equal(g.cachedTokens, 20);
  await loop.close();
});

test('summary: counts, timings, tokens per second and the finish reasons', async () => {
  const one = (await run(scripted([1]), plan({ maxTokens: 1 }))).g.summary();
  assert.equal(one.promptTokens, 2);
  assert.equal(one.completionTokens, 1);
  assert.ok(one.ttftMs !== null && one.ttftMs >= 0 && one.ttftMs < 10_000);
  assert.ok(one.queueMs !== null && one.queueMs >= 0 && one.queueMs < 10_000);
  assert.equal(one.tokensPerSecond, null, 'one token has no generation interval');
  assert.equal(one.finishReason, 'length');
  // Two choices, one ends on EOS, the other on length.
  const s = scripted([1, 2, 3, 1, 2, 3, 1, 2, 3]);
  const mixed = await run(s, plan({ n: 2, maxTokens: 200, stop: ['c'] }));
  const sum = mixed.g.summary();
  assert.equal(sum.finishReason, 'stop');
  assert.equal(sum.completionTokens, 6);
  const t = (await run(scripted(new Array(40).fill(1), { nCtx: 64 }), plan({ maxTokens: 40 }))).g.summary();
  assert.equal(t.finishReason, 'length');
  if (t.tokensPerSecond !== null) assert.ok(t.tokensPerSecond > 0);
  // ttft rounds to a tenth of a millisecond.
  assert.equal(Math.round(one.ttftMs! * 10), one.ttftMs! * 10);
});

test('a sequence that fails: finish reason error, the first error kept, done still resolves', async () => {
  const { g } = await run(scripted([1], { pickThrows: true }), plan({ n: 2 }));
  assert.equal(g.failed?.message, 'pick failed');
  assert.deepEqual(g.choices.map((c) => [c.endReason, c.finishReason]), [['error', null], ['error', null]]);
  assert.equal(g.summary().finishReason, 'error');
  assert.equal(g.summary().ttftMs, null);
  assert.equal(g.summary().tokensPerSecond, null);
});

test('cancel ends every choice as cancelled without a finish reason', async () => {
  const s = scripted(new Array(14).fill(1));
  let release!: () => void;
  s.hold.p = new Promise((r) => (release = r));
  const loop = new EngineLoop(s.rt.ctx, { maxWaiting: 2, nBatch: 64 });
  const g = new Generation(loop, s.rt, plan({ n: 2 }), new Metrics({ defaultMetrics: false }), {});
  g.cancel();
  s.hold.p = null;
  release();
  await g.done;
  assert.deepEqual(g.choices.map((c) => [c.endReason, c.finishReason]), [['cancelled', null], ['cancelled', null]]);
  assert.equal(g.summary().finishReason, 'cancelled');
  await loop.close();
});

test('what the decoder still holds at the end is shown (length and end token), and not after a stop string', async () => {
  const len = await run(scripted([1, 2], { flushText: 'Z' }), plan({ maxTokens: 2 }));
  assert.equal(len.g.choices[0].text, 'abZ');
  const eos = await run(scripted([1, EOS], { flushText: 'Z' }), plan({}));
  assert.equal(eos.g.choices[0].text, 'aZ');
  assert.equal(eos.g.choices[0].finishReason, 'stop');
  const cut = await run(scripted([1, 4, 1], { flushText: 'Z' }), plan({ stop: ['X'] }));
  assert.equal(cut.g.choices[0].text, 'a');
  // The held tail completing a stop string ends it with stop.
  const tail = await run(scripted([1, 4], { flushText: 'Y' }), plan({ maxTokens: 2, stop: ['XY'] }));
  assert.equal(tail.g.choices[0].text, 'a');
  assert.equal(tail.g.choices[0].finishReason, 'stop');
});

test('logprob picks: listed once their text is shown, with offsets into the text; none past a stop string', async () => {
  // a b X Y c with stop "XY": a and b are shown; X is held, then cut with Y.
  const { g, deltas } = await run(scripted([1, 2, 4, 5, 3]), plan({ topLogprobs: 0, stop: ['XY'] }));
  const c = g.choices[0];
  assert.equal(c.text, 'ab');
  assert.deepEqual(c.picks.map((p) => p.token), [1, 2]);
  assert.deepEqual(c.offsets, [0, 1]);
  assert.deepEqual(c.picks.map((p) => p.logprob), [-1, -2]);
  assert.deepEqual(deltas.map((d) => [d.text, d.picks.map((p) => p.token), d.offsets]), [['a', [1], [0]], ['b', [2], [1]], ['', [], []]].slice(0, deltas.length));
  // X held back and then shown at the end (length): its pick comes with it.
  const held = await run(scripted([1, 4]), plan({ topLogprobs: 0, stop: ['XY'], maxTokens: 2 }));
  assert.equal(held.g.choices[0].text, 'aX');
  assert.deepEqual(held.g.choices[0].picks.map((p) => p.token), [1, 4]);
  assert.deepEqual(held.g.choices[0].offsets, [0, 1]);
  assert.deepEqual(held.deltas.map((d) => [d.text, d.offsets]), [['a', [0]], ['X', [1]]]);
  // An empty piece: its pick waits for text after it, then comes at the same offset.
  const empty = await run(scripted([1, 6, 2]), plan({ topLogprobs: 0, maxTokens: 3 }));
  assert.deepEqual(empty.g.choices[0].offsets, [0, 1, 1]);
  assert.deepEqual(empty.deltas.map((d) => [d.text, d.picks.length]), [['a', 1], ['b', 2]]);
  // Ending on an empty piece: its pick still arrives, in a delta without text.
  const last = await run(scripted([1, 6]), plan({ topLogprobs: 0, maxTokens: 2 }));
  assert.deepEqual(last.g.choices[0].picks.map((p) => p.token), [1, 6]);
  assert.deepEqual(last.deltas.map((d) => [d.text, d.picks.map((p) => p.token), d.offsets]), [['a', [1], [0]], ['', [6], [1]]]);
  // Without logprobs nothing is collected, and an empty piece sends no delta.
  const plain = await run(scripted([1, 6, 2]), plan({ maxTokens: 3 }));
  assert.deepEqual(plain.g.choices[0].picks, []);
  assert.deepEqual(plain.deltas.map((d) => d.text), ['a', 'b']);
});

test('prompt scoring: each prompt token after the first gets its logprob under the model and the top alternatives', async () => {
  const { g } = await run(scripted([1]), plan({ prompts: [[1, 2, 3]], scorePrompt: 2, maxTokens: 1 }));
  const pp = g.choices[0].promptPicks!;
  assert.equal(pp.length, 3);
  assert.equal(pp[0], null);
  // Every row: token 2 has weight 2, the other six weight 1 (total 8).
  assert.equal(pp[1]!.token, 2);
  assert.ok(Math.abs(pp[1]!.logprob! - Math.log(2 / 8)) < 1e-6, `${pp[1]!.logprob}`);
  assert.equal(pp[2]!.token, 3);
  assert.ok(Math.abs(pp[2]!.logprob! - Math.log(1 / 8)) < 1e-6);
  assert.equal(pp[2]!.top!.length, 2);
  assert.equal(pp[2]!.top![0].token, 2);
  const none = await run(scripted([1]), plan({ prompts: [[1, 2, 3]], maxTokens: 1 }));
  assert.equal(none.g.choices[0].promptPicks, null);
});

test('timings on a fake clock (each decode takes 100 ms): ttft, queue time, tokens per second, histogram sums', async () => {
  const real = performance.now;
  let clock = 1000;
  performance.now = () => clock;
  try {
    const s = scripted([1, 1, 1, 1]);
    const decode = s.rt.ctx.decode.bind(s.rt.ctx);
    (s.rt.ctx as { decode: typeof decode }).decode = (b) => {
      clock += 100;
      return decode(b);
    };
    const { g, metrics: m } = await run(s, plan({ n: 2, maxTokens: 4 }));
    // Decode k starts at 1000 + 100k; step k's tokens are handed out once decode k + 1 has
    // started (1200, 1300, 1400), the last step's at 1400 (no next decode).
    const sum = g.summary();
    assert.equal(sum.ttftMs, 200);
    assert.equal(sum.queueMs, 0);
    // 8 tokens, 2 choices: 6 generated after the first ones, over 200 ms.
    assert.equal(sum.tokensPerSecond, 30);
    assert.equal(await metricSum(m, 'ttft'), 0.2);
    assert.equal(await metricSum(m, 'queueTime'), 0);
    assert.equal(await metricSum(m, 'e2e'), 0.4);
    // Per sequence: 1200 -> 1300 -> 1400 -> 1400.
    assert.ok(Math.abs((await metricSum(m, 'interToken')) - 0.4) < 1e-9);
  } finally {
    performance.now = real;
  }
});
