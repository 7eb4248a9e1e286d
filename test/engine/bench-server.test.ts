// bench-server (and bench --serve-streams): served streams against the engine batching as
// many sequences. The figures are timings (not asserted); what is asserted is that both
// sides did the work they are compared on, round after round on one loaded model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBenchServer, servedRates } from '../../server/cli/bench-server.js';

test('served rates: all tokens over the round; generation counts the events after the last stream\'s first over the time from then', () => {
  // Two streams: first events at 10 and 20 ms, last at 110 and 90 ms, 5 tokens each, round 200 ms.
  const r = servedRates([{ times: [10, 20, 50, 80, 110], tokens: 5 }, { times: [20, 30, 60, 70, 90], tokens: 5 }], 200);
  assert.equal(r.tokens, 10);
  assert.equal(r.aggregateTokensPerS, 50);
  // After 20 ms (the second stream's first): 3 + 4 events over 90 ms.
  assert.equal(r.generationTokensPerS, 7000 / 90);
  // One stream: the tokens after its first, over first to last.
  assert.equal(servedRates([{ times: [0, 10, 20], tokens: 3 }], 40).generationTokensPerS, 100);
  // Everything in one chunk (no time after the start): no generation rate, not Infinity.
  assert.equal(servedRates([{ times: [5], tokens: 3 }], 10).generationTokensPerS, 0);
});

test('each stream count is served and batched by the engine alone with every token generated, over repeated rounds', async () => {
  // reps 2: the second round reuses the slots the engine runs cleared behind the server's
  // back (with the prompt cache on, that round failed with a position error).
  const r = await runBenchServer({ size: 'tiny', type: 'q4_0', arch: 'bamboo', threads: 2, prompt: 12, gen: 5, reps: 2, concurrency: [1, 3] });
  assert.deepEqual(r.concurrency.map((c) => c.streams), [1, 3]);
  for (const c of r.concurrency) {
    assert.equal(c.tokens, c.streams * 5, `served tokens at ${c.streams} streams`);
    assert.equal(c.engine.tokens, c.streams * 5, `engine tokens at ${c.streams} sequences`);
    for (const v of [c.engine.aggregateTokensPerS, c.engine.generationTokensPerS]) assert.ok(v > 0 && Number.isFinite(v));
    assert.equal(c.aggregateShare, c.aggregateTokensPerS / c.engine.aggregateTokensPerS);
  }
  assert.ok(r.engineTokensPerS > 0);
});
