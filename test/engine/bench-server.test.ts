// bench-server (and bench --serve-streams): served streams against the engine batching as
// many sequences. The figures are timings (not asserted); what is asserted is that both
// sides did the work they are compared on, round after round on one loaded model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBenchServer, servedRates } from '../../server/cli/bench-server.js';

test('served rates: all tokens over the round; generation counts the tokens after each first over first-to-last time', () => {
  // Two streams: first tokens at 10 and 20 ms, last at 110 and 90 ms, 5 tokens each, round 200 ms.
  const r = servedRates([[10, 110, 5], [20, 90, 5]], 200);
  assert.equal(r.tokens, 10);
  assert.equal(r.aggregateTokensPerS, 50);
  assert.equal(r.generationTokensPerS, 80); // 8 tokens over 100 ms
  // Everything in one chunk (no time between first and last): no generation rate, not Infinity.
  assert.equal(servedRates([[5, 5, 3]], 10).generationTokensPerS, 0);
});

test('each stream count is served and batched by the engine alone with every token generated, over repeated rounds', async () => {
  // reps 2: the second round reuses the slots the engine runs cleared behind the server's
  // back (with the prompt cache on, that round failed with a position error).
  const r = await runBenchServer({ size: 'tiny', type: 'q4_0', arch: 'bamboo', threads: 2, prompt: 12, gen: 5, reps: 2, concurrency: [1, 3] });
  assert.deepEqual(r.concurrency.map((c) => c.streams), [1, 3]);
  for (const c of r.concurrency) {
    assert.equal(c.tokens, c.streams * 5, `served tokens at ${c.streams} streams`);
    assert.equal(c.engine.tokens, c.streams * 5, `engine tokens at ${c.streams} sequences`);
    assert.ok(c.engine.aggregateTokensPerS > 0 && Number.isFinite(c.engine.aggregateTokensPerS));
    assert.ok(c.engine.generationTokensPerS > c.engine.aggregateTokensPerS, 'the engine\'s generation-only rate leaves the prefill out');
    assert.equal(c.aggregateShare, c.aggregateTokensPerS / c.engine.aggregateTokensPerS);
  }
  assert.ok(r.engineTokensPerS > 0 && r.httpStreamTokensPerS > 0);
});
