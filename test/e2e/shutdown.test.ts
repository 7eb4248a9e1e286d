// SIGTERM on a real `relu-serve serve` process: /health turns 503, running requests may
// finish within the grace period, those still running after it are cut, and the process
// exits with status 0.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tinyModelPath } from './server.js';

const cli = fileURLToPath(new URL('../../server/cli/main.js', import.meta.url));

async function startProcess(graceMs: number): Promise<{ proc: ChildProcess; url: string; exited: Promise<number | null>; logs: string[] }> {
  const model = await tinyModelPath();
  const proc = spawn(process.execPath, [cli, 'serve', '--model', model, '--alias', 'tiny', '--port', '0', '--ctx-size', '2048', '--parallel', '2', '--threads', '1', '--shutdown-grace', String(graceMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
        if (m) resolve(m[1]);
      }
    });
    proc.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    proc.on('exit', (code) => reject(new Error(`server exited early (${code}): ${logs.join('\n')}`)));
  });
  for (;;) {
    const h = await fetch(`${url}/health`).catch(() => null);
    if (h?.status === 200) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, url, exited, logs };
}

/** Opens a stream; resolves once the first event arrived, with a promise of the whole body. */
async function openStream(url: string, maxTokens: number): Promise<Promise<string>> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'Tell a long story', max_tokens: maxTokens, stream: true, logit_bias: { '2': -100 } }),
  });
  assert.equal(res.status, 200);
  const it = res.body![Symbol.asyncIterator]();
  const dec = new TextDecoder();
  let body = '';
  while (!body.includes('data: ')) {
    const r = await it.next();
    if (r.done) break;
    body += dec.decode(r.value as Uint8Array, { stream: true });
  }
  return (async () => {
    for (;;) {
      const r = await it.next();
      if (r.done) return body;
      body += dec.decode(r.value as Uint8Array, { stream: true });
    }
  })();
}

test('SIGTERM: short requests finish within the grace period, then exit 0', { timeout: 60_000 }, async () => {
  const { proc, url, exited, logs } = await startProcess(20_000);
  const inflight = await openStream(url, 300);
  proc.kill('SIGTERM');
  const body = await inflight;
  assert.match(body, /"finish_reason":"length"/);
  assert.match(body, /data: \[DONE\]/);
  assert.equal(await exited, 0);
  assert.ok(logs.some((l) => l.includes('draining')));
});

test('SIGTERM: requests still running after the grace period are cut with an error event', { timeout: 60_000 }, async () => {
  const { proc, url, exited } = await startProcess(0);
  const inflight = await openStream(url, 100_000);
  proc.kill('SIGTERM');
  // New work is refused while draining (or the socket is already closed).
  const late = await fetch(`${url}/health`).then((r) => r.status, () => 'closed');
  assert.ok(late === 503 || late === 'closed', `health during drain: ${late}`);
  const body = await inflight;
  assert.match(body, /shutting_down/);
  assert.doesNotMatch(body, /\[DONE\]/);
  assert.equal(await exited, 0);
});
