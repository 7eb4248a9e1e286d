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
