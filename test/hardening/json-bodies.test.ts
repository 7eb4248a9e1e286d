// JSON bodies are parsed and validated on the event loop. Bodies just under the body
// limit, shaped to cost the most per byte (nesting hundreds of thousands deep, arrays of
// hundreds of thousands of tokens, logit_bias maps and stop lists of that size, many
// chat messages), sent by several clients at once, must leave /health answering in
// under 100 ms of event-loop time (health-poll.ts): they are refused while they stream
// in (server/http/json-limits.ts). Before that, one /health waited 940 ms of event-loop
// CPU behind them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { buildApp, type App } from '../../server/app.js';
import { createRuntime } from '../../server/scheduler/load.js';
import { assertResponsive, idleWorst, pollHealth } from './health-poll.js';

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-json-'));
const apps: App[] = [];
after(async () => {
  for (const a of apps) await a.close();
});

// Built and sent from another process, so that building megabyte bodies is not charged
// to the server's event loop. Each body is just under LIMIT bytes.
const SENDER = `
const [url, limit, rounds] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const fill = (head, unit, tail) => head + unit.repeat(Math.floor((limit - head.length - tail.length) / unit.length)) + tail;
const deep = (key) => { const n = Math.floor((limit - 40) / 2); return '{"' + key + '":' + '['.repeat(n) + ']'.repeat(n) + '}'; };
const bodies = [
  ['/v1/completions', deep('prompt')],
  ['/v1/completions', fill('{"max_tokens":1,"prompt":[', '7,', '7]}')],
  ['/v1/completions', fill('{"max_tokens":1,"prompt":"hi","logit_bias":{', '"9":1,', '"9":1}}')],
  ['/v1/completions', fill('{"max_tokens":1,"prompt":"hi","stop":[', '"a",', '"a"]}')],
  ['/v1/chat/completions', fill('{"max_tokens":1,"messages":[', '{"role":"user","content":""},', '{"role":"user","content":""}]}')],
  ['/detokenize', fill('{"tokens":[', '7,', '7]}')],
  ['/v1/chat/completions', deep('messages')],
  ['/v1/completions', fill('{"max_tokens":1,"prompt":[', '[7],', '[7]]}')],
  // Just under jsonMaxValues, padded with spaces to the limit: parsed, then refused.
  ['/v1/completions', fill('{"max_tokens":1,"prompt":[' + '7,'.repeat(65000) + '7', ' ', ']}')],
];
const post = ([path, body]) => fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  .then(async (r) => ({ path, bytes: body.length, status: r.status, code: (await r.json()).error?.code ?? null }));
(async () => {
  const out = [];
  for (let r = 0; r < rounds; r++) out.push(...(await Promise.all(bodies.map(post))));
  process.stdout.write(JSON.stringify(out));
})();
`;

type Answer = { path: string; bytes: number; status: number; code: string | null };

function send(url: string, limit: number, rounds: number): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', SENDER, url, String(limit), String(rounds)], { maxBuffer: 1 << 20 }, (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout))));
  });
}

async function serve(bodyLimit?: number): Promise<string> {
  const { makeModel } = await import('../../server/cli/make-model.js');
  const out = join(dir, `m-${apps.length}.gguf`);
  await makeModel({ arch: 'bamboo', size: 'tiny', type: 'f32', seed: 5, out });
  const rt = await createRuntime({ modelPath: out, alias: 'm', parallel: 2, ctxSize: 128, threads: 1 });
  const app = await buildApp({ runtime: rt, defaultMetrics: false, ...(bodyLimit ? { bodyLimit } : {}) });
  await app.modelReady;
  apps.push(app);
  return app.listen({ host: '127.0.0.1', port: 0 });
}

test('bodies near the default body limit, nine shapes at once, twice: /health stays under 100 ms of event-loop time', async () => {
  const url = await serve();
  const limit = 1 << 20; // the default bodyLimit (configs/README.md)
  const idle = await idleWorst(url);
  const health = pollHealth(url);
  const t0 = performance.now();
  const answers = await send(url, limit - 64, 2);
  const ms = performance.now() - t0;
  const h = await health.stop();
  assertResponsive(h, idle, `${answers.length} bodies of ~1 MiB (${ms.toFixed(0)} ms)`);
  assert.equal(answers.length, 18);
  answers.forEach((a, i) => {
    assert.ok(a.bytes > limit - 200 && a.bytes < limit, `${a.path}: ${a.bytes} bytes`);
    assert.equal(a.status, 400, JSON.stringify(a));
    assert.equal(a.code, i % 9 === 8 ? 'context_length_exceeded' : 'json_too_complex', JSON.stringify(a));
  });
});
