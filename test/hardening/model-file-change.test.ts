// A model file changed under a running server (model-file-guard.ts): truncating it in
// place used to kill the server with SIGBUS on the next request (the file is mapped).
// Now the model stops being served with a clear 503 and the process lives; a file
// replaced by rename keeps being served from the mapping; --no-mmap is immune.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, renameSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyModelPath } from '../e2e/server.js';
import { startServe, type ServeProcess } from './serve-process.js';

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-file-'));
const servers: ServeProcess[] = [];
after(() => servers.forEach((s) => s.kill()));

async function serveCopy(name: string, extra: string[] = []): Promise<{ s: ServeProcess; file: string }> {
  const file = join(dir, name);
  copyFileSync(await tinyModelPath(), file);
  const s = await startServe(['--model', file, '--alias', 'tiny', '--parallel', '1', '--ctx-size', '128', ...extra]);
  servers.push(s);
  return { s, file };
}

const complete = (url: string, maxTokens = 4) =>
  fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'hello', max_tokens: maxTokens, temperature: 0 }) }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));

test('truncated in place: 503 naming the change, on /health and on requests; the process lives', async () => {
  const { s, file } = await serveCopy('truncated.gguf');
  assert.equal((await complete(s.url)).status, 200);
  truncateSync(file, Math.floor(statSync(file).size / 2));
  const res = await complete(s.url);
  assert.equal(res.status, 503);
  assert.equal(res.body.error.code, 'model_unavailable');
  assert.match(res.body.error.message, /truncated/);
  const h = await fetch(`${s.url}/health`);
  assert.equal(h.status, 503);
  const hb = (await h.json()) as { status: string; error: string };
  assert.equal(hb.status, 'error');
  assert.match(hb.error, /truncated/);
  assert.doesNotMatch(hb.error, new RegExp(dir));
  assert.equal(s.proc.exitCode, null);
  assert.equal(s.proc.signalCode, null);
});

test('noticed while idle too (no request needed), and a write without a size change counts', async () => {
  const { s, file } = await serveCopy('rewritten.gguf');
  const size = statSync(file).size;
  // Same size, new bytes and mtime: the weights the server reads changed.
  writeFileSync(file, Buffer.alloc(size, 0x41));
  let status = 200;
  for (let i = 0; i < 60 && status === 200; i++) {
    await new Promise((r) => setTimeout(r, 50));
    status = (await fetch(`${s.url}/health`)).status;
  }
  assert.equal(status, 503);
  assert.equal((await complete(s.url)).status, 503);
});

test('replaced by rename: the loaded weights keep being served', async () => {
  const { s, file } = await serveCopy('replaced.gguf');
  const before = await complete(s.url);
  const next = join(dir, 'replaced.gguf.new');
  writeFileSync(next, 'not a model');
  renameSync(next, file);
  await new Promise((r) => setTimeout(r, 1200));
  const afterRes = await complete(s.url);
  assert.equal(afterRes.status, 200);
  assert.equal(afterRes.body.choices[0].text, before.body.choices[0].text);
  assert.equal((await fetch(`${s.url}/health`)).status, 200);
});

test('--no-mmap: truncation during generation changes nothing', async () => {
  const { s, file } = await serveCopy('private.gguf', ['--no-mmap']);
  const before = await complete(s.url, 8);
  const running = complete(s.url, 64);
  truncateSync(file, 100);
  const res = await running;
  assert.equal(res.status, 200);
  assert.equal((await complete(s.url, 8)).body.choices[0].text, before.body.choices[0].text);
  assert.equal((await fetch(`${s.url}/health`)).status, 200);
});

// The window the check leaves: a truncation landing while a decode step reads the
// mapping. The addon recovers the fault (addon/src/fault_guard.h). An f32 ReLU model a
// few MB large, served in dense mode, makes each step long next to the gap between steps
// and reads most of its bytes from the mapping (the FFN's up and down matrices; the load
// copied the rest onto the heap), so most tries land inside one; the loop goes on until
// one did (the reason names the decode).
test('truncated during a long generation: the process survives, the request fails with 503, /health says so, other requests work', { skip: process.platform !== 'linux' && 'SIGBUS on truncated mappings: Linux' }, async () => {
  const { makeModel } = await import('../../server/cli/make-model.js');
  const src = join(dir, 'dense-small.gguf');
  await makeModel({ arch: 'bamboo', size: 'small', type: 'f32', seed: 4, out: src });
  let inside = 0;
  for (let attempt = 0; attempt < 8 && inside === 0; attempt++) {
    const file = join(dir, `mid-decode-${attempt}.gguf`);
    copyFileSync(src, file);
    const s = await startServe(['--model', file, '--alias', 'dense', '--parallel', '1', '--ctx-size', '512', '--ffn-mode', 'dense']);
    servers.push(s);
    try {
      // Warm (the text worker starts on the first request), so the delay below runs
      // during the generation rather than before its first step.
      assert.equal((await complete(s.url, 1)).status, 200);
      // EOS banned, so the generation runs its full length unless the file stops it.
      const running = fetch(`${s.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'hello there', max_tokens: 400, temperature: 0, logit_bias: { '2': -100 } }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
      await new Promise((r) => setTimeout(r, 100 + 40 * attempt));
      truncateSync(file, 4096);
      const res = await running;
      if (res.status === 200) continue; // finished before the truncation: try again
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'model_unavailable');
      assert.match(res.body.error.message, /The model cannot be served: the model file (changed on disk while a decode read it|was truncated)/);
      if (/while a decode read it/.test(res.body.error.message)) inside++;
      else console.log(`attempt ${attempt}: caught between steps`);
      const h = await fetch(`${s.url}/health`);
      assert.equal(h.status, 503);
      assert.match(((await h.json()) as { error: string }).error, /the model file (changed|was truncated)/);
      // Refused from now on without touching the weights; the server itself answers on
      // (one model per process: another model in the same process is the engine test's,
      // mapped-file-fault.test.ts).
      assert.equal((await complete(s.url)).status, 503);
      assert.equal((await fetch(`${s.url}/metrics`)).status, 200);
      assert.equal(s.proc.exitCode, null);
      assert.equal(s.proc.signalCode, null);
    } finally {
      s.kill();
    }
  }
  assert.ok(inside > 0, 'no truncation landed inside a decode step in 8 tries');
});
