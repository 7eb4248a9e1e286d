// The event loop stays free while hostile requests run: a chat template that loops 10^8
// times is stopped after its budget with a 500 naming the template, and large prompts
// are refused by size or tokenised in the text worker. /health is polled over a real
// socket all along; its slowest answer must stay under 100 ms.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type App } from '../../server/app.js';
import { createRuntime } from '../../server/scheduler/load.js';

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-loop-'));
const apps: App[] = [];
after(async () => {
  for (const a of apps) await a.close();
});

const LOOPING_TEMPLATE = '{% for i in range(100000000) %}{% endfor %}{{ messages[0].content }}';

async function serve(chatTemplate: string | undefined, textTimeoutMs: number): Promise<{ app: App; url: string }> {
  const { makeModel } = await import('../../server/cli/make-model.js');
  const out = join(dir, `m-${apps.length}.gguf`);
  await makeModel({ arch: 'bamboo', size: 'tiny', type: 'f32', seed: 5, out, chatTemplate });
  const rt = await createRuntime({ modelPath: out, alias: 'm', parallel: 2, ctxSize: 128, threads: 1, textTimeoutMs });
  const app = await buildApp({ runtime: rt, defaultMetrics: false, bodyLimit: 8 << 20 });
  await app.modelReady;
  apps.push(app);
  return { app, url: await app.listen({ host: '127.0.0.1', port: 0 }) };
}

/** Polls /health until stop() and returns the slowest answer in ms. */
function pollHealth(url: string): { stop(): Promise<{ worst: number; count: number }> } {
  let running = true;
  let worst = 0;
  let count = 0;
  const done = (async () => {
    while (running) {
      const t0 = performance.now();
      const res = await fetch(`${url}/health`);
      await res.text();
      assert.equal(res.status, 200);
      worst = Math.max(worst, performance.now() - t0);
      count++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return { worst, count };
    },
  };
}

const postJson = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));

test('a looping chat template is stopped after its budget; the server stays responsive', async () => {
  const { url } = await serve(LOOPING_TEMPLATE, 400);
  const health = pollHealth(url);
  const t0 = performance.now();
  const res = await postJson(`${url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
  const ms = performance.now() - t0;
  const h = await health.stop();
  assert.equal(res.status, 500);
  assert.equal(res.body.error.code, 'chat_template_failed');
  assert.match(res.body.error.message, /tokenizer\.chat_template/);
  assert.match(res.body.error.message, /400 ms/);
  assert.ok(ms < 3000, `answered after ${ms} ms`);
  assert.ok(h.count > 3, `only ${h.count} health answers`);
  assert.ok(h.worst < 100, `/health took ${h.worst.toFixed(1)} ms`);
  // The worker is replaced: plain completions (tokenised there too) still work.
  const ok = await postJson(`${url}/v1/completions`, { prompt: 'hello', max_tokens: 2 });
  assert.equal(ok.status, 200);
});

test('large prompts: /health stays under 100 ms while four run at once', async () => {
  const { url } = await serve(undefined, 10_000);
  const health = pollHealth(url);
  const big = 'the quick brown fox jumps over the lazy dog '.repeat(24_000); // ~1 MB
  const t0 = performance.now();
  const answers = await Promise.all([
    postJson(`${url}/v1/completions`, { prompt: big, max_tokens: 1 }),
    postJson(`${url}/v1/chat/completions`, { messages: [{ role: 'user', content: big }], max_tokens: 1 }),
    postJson(`${url}/v1/completions`, { prompt: [big, 'x'], max_tokens: 1 }),
    // /tokenize has no context to check: the whole megabyte is tokenised, in the worker.
    postJson(`${url}/tokenize`, { content: big }),
  ]);
  const ms = performance.now() - t0;
  const h = await health.stop();
  assert.deepEqual(answers.map((a) => a.status), [400, 400, 400, 200]);
  for (const a of answers.slice(0, 3)) assert.equal(a.body.error.code, 'context_length_exceeded');
  assert.ok(answers[3].body.tokens.length > 100_000);
  assert.ok(h.worst < 100, `/health took ${h.worst.toFixed(1)} ms (of ${h.count} polls in ${ms.toFixed(0)} ms)`);
  console.log(`# large prompts: ${h.count} /health polls in ${ms.toFixed(0)} ms, slowest ${h.worst.toFixed(1)} ms`);
});
