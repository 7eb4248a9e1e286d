// test-runner: alone (it times the exit after the last stream ends)
// SIGTERM on a real `relu-serve serve` process: /health turns 503, running requests may
// finish within the grace period, those still running after it are cut, and the process
// exits with status 0.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { serverReady } from '../server-process.js';
import { tinyModelPath } from './server.js';

const cli = fileURLToPath(new URL('../../server/cli/main.js', import.meta.url));

// A test that fails or times out before its SIGTERM must not leave a server running
// (it would also keep this test process alive).
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

async function startProcess(graceMs: number): Promise<{ proc: ChildProcess; url: string; exited: Promise<number | null>; logs: string[] }> {
  const model = await tinyModelPath();
  const proc = spawn(process.execPath, [cli, 'serve', '--model', model, '--alias', 'tiny', '--port', '0', '--ctx-size', '2048', '--parallel', '2', '--threads', '1', '--shutdown-grace', String(graceMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(proc);
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const { url, logs } = await serverReady(proc, 200);
  return { proc, url, exited, logs };
}

/**
 * Opens a stream (plain node:http, so nothing buffers) and resolves once the first event
 * is in, with a promise of the whole body (wrapped: a promise resolved with a promise
 * would wait for it).
 */
function openStream(url: string, maxTokens: number): Promise<{ rest: Promise<string> }> {
  return new Promise((resolveFirst, reject) => {
    const req = http.request(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      assert.equal(res.statusCode, 200);
      res.setEncoding('utf8');
      let body = '';
      let first = true;
      const done = new Promise<string>((r) => res.on('end', () => r(body)));
      res.on('data', (d: string) => {
        body += d;
        if (first && body.includes('data: ')) {
          first = false;
          resolveFirst({ rest: done });
        }
      });
    });
    req.on('error', reject);
    req.end(JSON.stringify({ prompt: 'Tell a long story', max_tokens: maxTokens, stream: true, logit_bias: { '2': -100 } }));
  });
}

test('SIGTERM: short requests finish within the grace period, then exit 0', { timeout: 60_000 }, async () => {
  const { proc, url, exited, logs } = await startProcess(20_000);
  const { rest: inflight } = await openStream(url, 300);
  proc.kill('SIGTERM');
  const body = await inflight;
  const endedAt = performance.now();
  assert.match(body, /"finish_reason":"length"/);
  assert.match(body, /data: \[DONE\]/);
  assert.equal(await exited, 0);
  // The stream's connection turns idle when it ends: the server must close it then, not
  // wait out Node's 5 s keep-alive timeout before it can stop.
  const exitMs = performance.now() - endedAt;
  assert.ok(exitMs < 3000, `exited ${Math.round(exitMs)} ms after the last stream ended`);
  assert.ok(logs.some((l) => l.includes('draining')));
});

test('SIGTERM: requests still running after the grace period are cut with an error event', { timeout: 60_000 }, async () => {
  const { proc, url, exited, logs } = await startProcess(0);
  const { rest: inflight } = await openStream(url, 100_000);
  const killedAt = new Date().toISOString();
  proc.kill('SIGTERM');
  // Signals arrive asynchronously: wait until the drain shows, then new work is refused
  // (503, or the listening socket is already closed).
  let late: number | string = 200;
  for (let i = 0; i < 100 && late === 200; i++) {
    late = await fetch(`${url}/health`).then(async (r) => (await r.arrayBuffer(), r.status), () => 'closed');
    if (late === 200) await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(late === 503 || late === 'closed', `health during drain: ${late}`);
  const body = await inflight;
  assert.match(body.slice(-600), /shutting_down/, `killed at ${killedAt}\n` + body.slice(-300) + logs.join('\n'));
  assert.doesNotMatch(body, /\[DONE\]/);
  assert.equal(await exited, 0);
});
