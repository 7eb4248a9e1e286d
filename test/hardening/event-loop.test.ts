// test-runner: alone (it times /health and the event loop's CPU while prompts run)
// The event loop stays free while hostile requests run: a chat template that loops 10^8
// times is stopped after its budget with a 500 naming the template, and large prompts
// are refused by size or tokenised in the text worker. /health is polled over a real
// socket all along; its slowest answer must stay under 100 ms (see assertResponsive for
// a machine that is overloaded by others). Before the text worker it took 13 s.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { buildApp, type App } from '../../server/app.js';
import { createRuntime } from '../../server/scheduler/load.js';
import { assertResponsive, idleWorst, pollHealth } from './health-poll.js';

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

const LARGE_SENDER = `
const url = process.argv[1];
const big = 'the quick brown fox jumps over the lazy dog '.repeat(24000); // ~1 MB
const post = (path, body) => fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  .then(async (r) => { const b = await r.json(); return { status: r.status, code: b.error?.code ?? null, tokens: b.tokens?.length ?? null }; });
Promise.all([
  post('/v1/completions', { prompt: big, max_tokens: 1 }),
  post('/v1/chat/completions', { messages: [{ role: 'user', content: big }], max_tokens: 1 }),
  post('/v1/completions', { prompt: [big, 'x'], max_tokens: 1 }),
  // /tokenize has no context to check: it is all tokenised, in the worker (a quarter of
  // the megabyte keeps the test short on a loaded machine).
  post('/tokenize', { content: big.slice(0, 250000) }),
]).then((a) => process.stdout.write(JSON.stringify(a)));
`;

function sendLarge(url: string): Promise<{ status: number; code: string | null; tokens: number | null }[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', LARGE_SENDER, url], { maxBuffer: 1 << 20 }, (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout))));
  });
}

const postJson = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));

test('a looping chat template is stopped after its budget; the server stays responsive', async () => {
  const { url } = await serve(LOOPING_TEMPLATE, 400);
  const idle = await idleWorst(url);
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
  assertResponsive(h, idle, 'looping template');
  // The worker is replaced: plain completions (tokenised there too) still work.
  const ok = await postJson(`${url}/v1/completions`, { prompt: 'hello', max_tokens: 2 });
  assert.equal(ok.status, 200);
});

test('large prompts: /health stays under 100 ms while four run at once', async () => {
  const { url } = await serve(undefined, 30_000);
  const idle = await idleWorst(url);
  const health = pollHealth(url);
  // The four senders run in another process: building and sending megabyte bodies (and
  // parsing a 240k-token reply) must not be charged to the server's event loop.
  const t0 = performance.now();
  const answers = await sendLarge(url);
  const ms = performance.now() - t0;
  const h = await health.stop();
  assert.deepEqual(answers.map((a) => a.status), [400, 400, 400, 200]);
  for (const a of answers.slice(0, 3)) assert.equal(a.code, 'context_length_exceeded');
  assert.ok(answers[3].tokens! > 50_000, JSON.stringify(answers[3]));
  assertResponsive(h, idle, `four large prompts (${ms.toFixed(0)} ms)`);
});
