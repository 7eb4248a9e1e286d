// app.inject() tests: validation, errors, auth, limits, CORS, health while loading, the
// queue-full answer. The model is the real tiny model through the real engine.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp, type App } from '../../server/app.js';
import { tinyRuntime, waitFor } from '../e2e/server.js';
import type { ModelRuntime } from '../../server/scheduler/runtime.js';
import type { DecodeBatch } from '../../server/engine/types.js';
import { loggerOptions } from '../../server/observability/logger.js';

let rt: ModelRuntime;
let app: App;
before(async () => {
  rt = await tinyRuntime({ parallel: 2, ctxSize: 128 });
  app = await buildApp({ runtime: rt, ownsRuntime: false, defaultMetrics: false, bodyLimit: 4096 });
  await app.modelReady;
});
after(async () => {
  await app.close();
  rt.dispose();
});

const chat = (body: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/v1/chat/completions', payload: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

function assertError(res: { statusCode: number; json(): unknown }, status: number, param?: string | null, code?: string) {
  assert.equal(res.statusCode, status);
  const e = (res.json() as { error: { message: string; type: string; param: string | null; code: string | null } }).error;
  assert.equal(typeof e.message, 'string');
  assert.equal(typeof e.type, 'string');
  assert.ok('param' in e && 'code' in e);
  if (param !== undefined) assert.equal(e.param, param);
  if (code !== undefined) assert.equal(e.code, code);
}

test('invalid JSON, empty body, wrong content type, non-object body are 400/415', async () => {
  assertError(await chat('{"messages": ['), 400, null, 'invalid_json');
  assertError(await chat('[]'), 400, null, 'invalid_json');
  // Fastify reads text/plain as a string: not a JSON object, so 400.
  assertError(await app.inject({ method: 'POST', url: '/v1/chat/completions', payload: 'hello', headers: { 'content-type': 'text/plain' } }), 400, null, 'invalid_json');
  assertError(await app.inject({ method: 'POST', url: '/v1/chat/completions', payload: '<a/>', headers: { 'content-type': 'application/xml' } }), 415);
  assertError(await app.inject({ method: 'POST', url: '/v1/chat/completions', payload: '', headers: { 'content-type': 'application/json' } }), 400, null, 'invalid_json');
});

test('field errors name the field', async () => {
  assertError(await chat({ messages: [{ role: 'user', content: 'x' }], top_p: 2 }), 400, 'top_p');
  assertError(await chat({ messages: [{ role: 'robot', content: 'x' }] }), 400, 'messages[0].role');
  assertError(await chat({ messages: [{ role: 'user', content: 'x' }], n: 3 }), 400, 'n');
  assertError(await chat({ messages: [{ role: 'user', content: 'x' }], logit_bias: { '999999': 1 } }), 400, 'logit_bias.999999');
  assertError(await chat({ messages: [{ role: 'user', content: 'x' }], model: 'other' }), 404, 'model', 'model_not_found');
  const comp = await app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: [1, 2, 1e9] } });
  assertError(comp, 400, 'prompt[2]');
  const tok = await app.inject({ method: 'POST', url: '/tokenize', payload: { content: 5 } });
  assertError(tok, 400, 'content');
  const detok = await app.inject({ method: 'POST', url: '/detokenize', payload: { tokens: [1, -1] } });
  assertError(detok, 400, 'tokens[1]');
});

test('body over the limit is 413; unknown URL is 404 in OpenAI shape', async () => {
  assertError(await chat({ messages: [{ role: 'user', content: 'x'.repeat(10_000) }] }), 413);
  assertError(await app.inject({ method: 'GET', url: '/v2/nothing' }), 404, null, 'unknown_url');
});

test('prompt longer than the context: 400 naming both sizes', async () => {
  const res = await app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: Array.from({ length: 200 }, () => 5) } });
  assertError(res, 400, 'prompt', 'context_length_exceeded');
  const msg = (res.json() as { error: { message: string } }).error.message;
  assert.match(msg, /128/);
  assert.match(msg, /200/);
});

test('a non-streamed request through inject works and carries a request id', async () => {
  // EOS (id 2) banned: the reply runs to max_tokens, so the count is known exactly.
  const res = await chat({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, temperature: 0, logit_bias: { '2': -100 } });
  assert.equal(res.statusCode, 200);
  assert.ok(res.headers['x-request-id']);
  const body = res.json() as { choices: { message: { content: string }; finish_reason: string }[]; usage: { completion_tokens: number } };
  assert.equal(body.usage.completion_tokens, 3);
  assert.equal(body.choices[0].finish_reason, 'length');
});

test('API keys: Bearer or X-Api-Key, 401 otherwise, /health public', async () => {
  const a = await buildApp({ runtime: rt, ownsRuntime: false, defaultMetrics: false, apiKeys: ['k-one', 'k-two'] });
  await a.modelReady;
  try {
    const get = (headers: Record<string, string>) => a.inject({ method: 'GET', url: '/v1/models', headers });
    assertError(await get({}), 401, null, 'missing_api_key');
    assertError(await get({ authorization: 'Bearer nope' }), 401, null, 'invalid_api_key');
    assertError(await get({ authorization: 'Bearer k-one-longer' }), 401);
    assert.equal((await get({ authorization: 'Bearer k-one' })).statusCode, 200);
    assert.equal((await get({ 'x-api-key': 'k-two' })).statusCode, 200);
    assert.equal((await a.inject({ method: 'GET', url: '/health' })).statusCode, 200);
    assertError(await a.inject({ method: 'GET', url: '/metrics' }), 401);
  } finally {
    await a.close();
  }
});

test('API keys never reach the logs', async () => {
  const lines: string[] = [];
  const { default: pino } = await import('pino');
  const logger = pino(loggerOptions('trace'), { write: (s: string) => lines.push(s) });
  const a = await buildApp({ runtime: rt, ownsRuntime: false, defaultMetrics: false, apiKeys: ['secret-key-123'], loggerInstance: logger });
  await a.modelReady;
  try {
    await a.inject({ method: 'GET', url: '/v1/models', headers: { authorization: 'Bearer secret-key-123' } });
    await a.inject({ method: 'GET', url: '/v1/models', headers: { authorization: 'Bearer wrong-key-456' } });
    await a.inject({ method: 'POST', url: '/v1/completions', headers: { 'x-api-key': 'secret-key-123' }, payload: { prompt: 'hi', max_tokens: 2 } });
  } finally {
    await a.close();
  }
  const all = lines.join('');
  assert.ok(lines.length >= 3, 'one summary line per request');
  assert.ok(!all.includes('secret-key-123') && !all.includes('wrong-key-456'));
  const summary = lines.map((l) => JSON.parse(l)).find((l) => l.route === '/v1/completions');
  assert.ok(summary);
  for (const k of ['reqId', 'status', 'promptTokens', 'completionTokens', 'ttftMs', 'finishReason', 'clientDisconnected']) assert.ok(k in summary, `summary lacks ${k}`);
});

test('CORS headers only when origins are configured', async () => {
  const a = await buildApp({ runtime: rt, ownsRuntime: false, defaultMetrics: false, corsOrigins: ['https://ok.example'] });
  try {
    const pre = await a.inject({ method: 'OPTIONS', url: '/v1/chat/completions', headers: { origin: 'https://ok.example', 'access-control-request-method': 'POST' } });
    assert.equal(pre.headers['access-control-allow-origin'], 'https://ok.example');
    const bad = await a.inject({ method: 'GET', url: '/health', headers: { origin: 'https://evil.example' } });
    assert.equal(bad.headers['access-control-allow-origin'], undefined);
  } finally {
    await a.close();
  }
  const plain = await app.inject({ method: 'GET', url: '/health', headers: { origin: 'https://ok.example' } });
  assert.equal(plain.headers['access-control-allow-origin'], undefined);
});

test('/health is 503 while the model loads and 200 after; generation is 503 meanwhile', async () => {
  let release!: (r: ModelRuntime) => void;
  const a = await buildApp({ runtime: new Promise<ModelRuntime>((r) => (release = r)), ownsRuntime: false, defaultMetrics: false });
  try {
    const h = await a.inject({ method: 'GET', url: '/health' });
    assert.equal(h.statusCode, 503);
    assert.deepEqual(h.json(), { status: 'loading' });
    assertError(await a.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: 'x' } }), 503, null, 'model_loading');
    release(rt);
    await a.modelReady;
    assert.equal((await a.inject({ method: 'GET', url: '/health' })).statusCode, 200);
  } finally {
    await a.close();
  }
});

test('a failed load is reported by /health and generation answers 503', async () => {
  const a = await buildApp({ runtime: Promise.reject(new Error('no such file')), defaultMetrics: false });
  try {
    await a.modelReady;
    const h = await a.inject({ method: 'GET', url: '/health' });
    assert.equal(h.statusCode, 503);
    // The reason stays in the log: the public /health says only that loading failed.
    assert.equal((h.json() as { status: string }).status, 'error');
    assert.doesNotMatch(JSON.stringify(h.json()), /no such file/);
  } finally {
    await a.close();
  }
});

test('a full wait queue answers 429 with Retry-After', async () => {
  // Controllable engine: the real context, but decode waits until the test lets it go,
  // so the one slot stays busy and the one queue place stays taken while we probe.
  let gate!: () => void;
  let held = new Promise<void>((r) => (gate = r));
  const ctx = rt.ctx;
  const holding: ModelRuntime = {
    ...rt,
    nSeq: 1,
    ctx: { nSeq: 1, nCtx: ctx.nCtx, truncate: (s, p) => ctx.truncate(s, p), decode: async (b: DecodeBatch) => { await held; return ctx.decode(b); } },
  };
  const a = await buildApp({ runtime: holding, ownsRuntime: false, defaultMetrics: false, maxQueue: 1 });
  await a.modelReady;
  try {
    const req = () => a.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: 'x', max_tokens: 2 } });
    const first = req();
    await waitFor(() => a.relu.loop!.stats().running === 1, 2000, 'first admitted');
    const second = req();
    await waitFor(() => a.relu.loop!.stats().waiting === 1, 2000, 'second queued');
    const third = await req();
    assertError(third, 429, null, 'queue_full');
    assert.ok(third.headers['retry-after']);
    gate();
    held = Promise.resolve();
    assert.equal((await first).statusCode, 200);
    assert.equal((await second).statusCode, 200);
  } finally {
    gate();
    await a.close();
  }
});

test('an engine failure is a 500 in OpenAI shape (an error event when streaming) and the server stays up', async () => {
  // Controllable engine: the real context, but the next decode can be made to fail,
  // which the real engine does not do on valid input.
  let failNext = false;
  const ctx = rt.ctx;
  const flaky: ModelRuntime = {
    ...rt,
    ctx: {
      nSeq: ctx.nSeq, nCtx: ctx.nCtx, truncate: (s, p) => ctx.truncate(s, p),
      decode: (b: DecodeBatch) => {
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error('simulated engine fault'));
        }
        return ctx.decode(b);
      },
    },
  };
  const a = await buildApp({ runtime: flaky, ownsRuntime: false, defaultMetrics: false });
  await a.modelReady;
  try {
    failNext = true;
    const res = await a.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: 'x', max_tokens: 3 } });
    assertError(res, 500, null, 'internal_error');
    failNext = true;
    const st = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { messages: [{ role: 'user', content: 'x' }], max_tokens: 3, stream: true } });
    assert.equal(st.statusCode, 200);
    assert.match(st.body, /"code":"internal_error"/);
    assert.doesNotMatch(st.body, /\[DONE\]/);
    const ok = await a.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: 'x', max_tokens: 3 } });
    assert.equal(ok.statusCode, 200);
    assert.equal(a.relu.loop!.stats().slotsBusy, 0);
  } finally {
    await a.close();
  }
});
