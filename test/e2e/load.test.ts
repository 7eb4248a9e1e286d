// Bounded load test: 32 concurrent clients send a few hundred mixed requests (chat and
// completions, streamed and not), some aborted at random. Every request must end in a
// complete, valid answer or a proper error; the server must stay up, all slots must be
// free afterwards, and memory must come back to its baseline.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import OpenAI from 'openai';
import { startServer, waitFor } from './server.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function settle(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

/** Deterministic pseudo-random numbers, so a failing run can be repeated. */
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x * 1664525 + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

test('32 concurrent clients, 320 requests, random aborts', { timeout: 600_000 }, async () => {
  const s = await startServer({ parallel: 8, ctxSize: 128, maxQueue: 64 });
  try {
    const { client } = s;
    const rand = rng(42);
    const runOne = async (i: number) => {
      const r = rand();
      const stream = r < 0.5;
      const chat = rand() < 0.5;
      const abortAfterMs = rand() < 0.2 ? Math.floor(rand() * 50) : -1;
      const ac = new AbortController();
      if (abortAfterMs >= 0) setTimeout(() => ac.abort(), abortAfterMs);
      const max_tokens = 1 + Math.floor(rand() * 24);
      try {
        if (chat && stream) {
          const st = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: `req ${i}` }], max_tokens, stream: true, stream_options: { include_usage: true } }, { signal: ac.signal });
          let finish: string | null = null;
          let usage: OpenAI.CompletionUsage | null | undefined = null;
          for await (const ch of st) {
            finish = ch.choices[0]?.finish_reason ?? finish;
            if (ch.usage) usage = ch.usage;
          }
          // The SDK may end an aborted stream quietly instead of throwing.
          if (ac.signal.aborted && finish === null) return 'aborted';
          assert.ok(finish === 'stop' || finish === 'length', `stream ${i} ended without finish_reason`);
          assert.ok(usage && usage.completion_tokens <= max_tokens);
        } else if (chat) {
          const res = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: `req ${i}` }], max_tokens }, { signal: ac.signal });
          assert.ok(res.choices[0].finish_reason === 'stop' || res.choices[0].finish_reason === 'length');
          assert.ok(res.usage!.completion_tokens <= max_tokens);
        } else if (stream) {
          const st = await client.completions.create({ model: 'tiny', prompt: `request number ${i}`, max_tokens, stream: true }, { signal: ac.signal });
          let finish: string | null = null;
          for await (const ch of st) finish = ch.choices[0]?.finish_reason ?? finish;
          if (ac.signal.aborted && finish === null) return 'aborted';
          assert.ok(finish === 'stop' || finish === 'length', `stream ${i} ended without finish_reason`);
        } else {
          const res = await client.completions.create({ model: 'tiny', prompt: `request number ${i}`, max_tokens }, { signal: ac.signal });
          assert.ok(res.choices[0].finish_reason === 'stop' || res.choices[0].finish_reason === 'length');
        }
        return 'ok';
      } catch (err) {
        if (ac.signal.aborted && (err instanceof OpenAI.APIUserAbortError || (err as Error).name === 'AbortError')) return 'aborted';
        if (err instanceof OpenAI.RateLimitError) return 'busy';
        throw err;
      }
    };
    // Warm-up round, then the baseline.
    const tw = performance.now();
    await Promise.all(Array.from({ length: 8 }, (_, i) => runOne(i)));
    process.stderr.write(`warm-up ${(performance.now() - tw).toFixed(0)} ms\n`);
    await waitFor(() => s.app.relu.loop!.stats().slotsBusy === 0, 5000, 'idle after warm-up');
    const base = settle();
    const outcomes: Record<string, number> = {};
    let next = 0;
    const total = 320;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        const o = await runOne(i);
        outcomes[o] = (outcomes[o] ?? 0) + 1;
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 32 }, worker));
    process.stderr.write(`load ${(performance.now() - t0).toFixed(0)} ms\n`);
    assert.equal((outcomes.ok ?? 0) + (outcomes.aborted ?? 0) + (outcomes.busy ?? 0), total);
    assert.ok((outcomes.ok ?? 0) > total / 2, `most requests complete: ${JSON.stringify(outcomes)}`);
    await waitFor(() => {
      const st = s.app.relu.loop!.stats();
      return st.slotsBusy === 0 && st.waiting === 0 && st.running === 0;
    }, 5000, 'all slots free');
    // The server still answers.
    const h = await fetch(`${s.url}/health`);
    assert.equal(h.status, 200);
    await new Promise((r) => setTimeout(r, 200));
    const after = settle();
    const growth = (after - base) / 2 ** 20;
    // Prometheus histograms and pooled buffers settle at a few MiB; a leak per request would show tens.
    assert.ok(growth < 16, `heap grew by ${growth.toFixed(1)} MiB (baseline ${(base / 2 ** 20).toFixed(1)} MiB)`);
    process.stderr.write(`load: ${JSON.stringify(outcomes)}, heap ${(base / 2 ** 20).toFixed(1)} -> ${(after / 2 ** 20).toFixed(1)} MiB\n`);
  } finally {
    const tc = performance.now();
    await s.close();
    process.stderr.write(`close ${(performance.now() - tc).toFixed(0)} ms\n`);
  }
});
