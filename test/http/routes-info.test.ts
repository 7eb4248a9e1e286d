// /health, /v1/models, /metrics, /tokenize and /detokenize through app.inject() on a
// scripted runtime (route-runtime.ts): exact bodies, statuses and headers, every refusal.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp, type App } from '../../server/app.js';
import { routeRuntime, tok, withApp } from './route-runtime.js';
import { waitFor } from '../e2e/server.js';

const get = (app: App, url: string) => app.inject({ method: 'GET', url });
const post = (app: App, url: string, payload: unknown) =>
  app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) });
const err = (r: { statusCode: number; json(): { error: { message: string; param: string | null; code: string | null } } }) => {
  const e = r.json().error;
  return [r.statusCode, e.param, e.code, e.message];
};

test('/health: loading (Retry-After 2), failed, faulty, draining, and ok with the slot and queue counts', async () => {
  let release!: (r: ReturnType<typeof routeRuntime>) => void;
  const loading = await buildApp({ runtime: new Promise((r) => (release = r)), defaultMetrics: false });
  try {
    const h = await get(loading, '/health');
    assert.deepEqual([h.statusCode, h.headers['retry-after'], h.json()], [503, '2', { status: 'loading' }]);
    release(routeRuntime());
    await loading.modelReady;
  } finally {
    await loading.close();
  }
  const failed = await buildApp({ runtime: Promise.reject(new Error('/secret/path: bad magic')), defaultMetrics: false });
  try {
    await failed.modelReady;
    const h = await get(failed, '/health');
    assert.deepEqual([h.statusCode, h.headers['retry-after'], h.json()], [503, undefined, { status: 'error', error: 'the model failed to load; see the server log' }]);
  } finally {
    await failed.close();
  }
  let fault: string | null = null;
  const rt = routeRuntime({ nSeq: 2, fault: () => fault });
  await withApp(rt, async (app) => {
    const ok = await get(app, '/health');
    assert.deepEqual([ok.statusCode, ok.json()], [200, { status: 'ok', model: 'scripted', slots_total: 2, slots_idle: 2, requests_waiting: 0 }]);
    // Three requests on two slots, the first held in its first step: one slot busy, two waiting.
    let go!: () => void;
    rt.hold.p = new Promise((r) => (go = r));
    const reqs = [1, 2, 3].map(() => post(app, '/v1/completions', { prompt: 'hi', max_tokens: 2 }));
    try {
      await waitFor(() => app.relu.loop!.stats().waiting === 2, 2000, 'one running, two waiting');
      assert.deepEqual((await get(app, '/health')).json(), { status: 'ok', model: 'scripted', slots_total: 2, slots_idle: 1, requests_waiting: 2 });
    } finally {
      rt.hold.p = null;
      go();
    }
    for (const r of await Promise.all(reqs)) assert.equal(r.statusCode, 200);
    fault = 'the model file changed on disk';
    const bad = await get(app, '/health');
    assert.deepEqual([bad.statusCode, bad.json()], [503, { status: 'error', error: 'the model file changed on disk' }]);
    fault = null;
    app.relu.draining = true;
    const dr = await get(app, '/health');
    assert.deepEqual([dr.statusCode, dr.json()], [503, { status: 'draining' }]);
  });
});

test('/v1/models and /v1/models/{id}: the loaded model with its context and meta; another id is a 404', async () => {
  await withApp(routeRuntime({ nSeq: 3, nCtx: 200 }), async (app) => {
    const model = { id: 'scripted', object: 'model', created: 1700000000, owned_by: 'relu-serve', context_length: 200, meta: { n_ctx: 200, n_parallel: 3, n_vocab: tok.nVocab, arch: 'test' } };
    const list = await get(app, '/v1/models');
    assert.deepEqual([list.statusCode, list.json()], [200, { object: 'list', data: [model] }]);
    // A runtime without a fault() (the plain CPU one) is healthy.
    assert.equal((await get(app, '/health')).statusCode, 200);
    const one = await get(app, '/v1/models/scripted');
    assert.deepEqual([one.statusCode, one.json()], [200, model]);
    assert.deepEqual(err(await get(app, '/v1/models/gpt-4o')), [404, 'model', 'model_not_found', "The model \"gpt-4o\" does not exist; this server serves 'scripted'."]);
    app.relu.draining = true;
    assert.deepEqual(err(await get(app, '/v1/models')).slice(0, 3), [503, null, 'shutting_down']);
    assert.deepEqual(err(await get(app, '/v1/models/scripted')).slice(0, 3), [503, null, 'shutting_down']);
  });
});

test('/metrics: the Prometheus text format with its content type', async () => {
  await withApp(routeRuntime(), async (app) => {
    assert.equal((await post(app, '/v1/completions', { prompt: 'hi', max_tokens: 1 })).statusCode, 200);
    const m = await get(app, '/metrics');
    assert.equal(m.statusCode, 200);
    assert.equal(m.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(m.body, /^relu_serve_requests_total\{route="\/v1\/completions",method="POST",status="200"\} 1$/m);
  });
});

test('/tokenize: tokens, BOS only when add_special, pieces as text or as bytes, no context limit; every refusal', async () => {
  await withApp(routeRuntime({ nCtx: 16 }), async (app) => {
    const hi = tok.encode('hi', false);
    assert.deepEqual((await post(app, '/tokenize', { content: 'hi' })).json(), { tokens: hi });
    assert.deepEqual((await post(app, '/tokenize', { content: 'hi', add_special: false, with_pieces: null })).json(), { tokens: hi });
    assert.deepEqual((await post(app, '/tokenize', { content: 'hi', add_special: true })).json(), { tokens: [1, ...hi] });
    // "é" is two byte tokens: each piece alone is not valid UTF-8, so it is given as its byte value.
    const e = await post(app, '/tokenize', { content: 'hi é', with_pieces: true });
    assert.deepEqual(e.json(), { tokens: [{ id: hi[0], piece: ' hi' }, { id: tok.encode(' ', false)[0], piece: ' ' }, { id: 3 + 0xc3, piece: [0xc3] }, { id: 3 + 0xa9, piece: [0xa9] }] });
    // Far more tokens than the context holds: tokenising is not generating.
    assert.equal((await post(app, '/tokenize', { content: 'x'.repeat(100) })).json().tokens.length, 101);
    assert.deepEqual(err(await post(app, '/tokenize', { content: 5 })), [400, 'content', 'invalid_type', "'content' must be a string."]);
    assert.deepEqual(err(await post(app, '/tokenize', {})), [400, 'content', 'invalid_type', "'content' must be a string."]);
    assert.deepEqual(err(await post(app, '/tokenize', { content: 'x', add_special: 1 })), [400, 'add_special', 'invalid_type', "'add_special' must be a boolean."]);
    assert.deepEqual(err(await post(app, '/tokenize', { content: 'x', with_pieces: 'yes' })), [400, 'with_pieces', 'invalid_type', "'with_pieces' must be a boolean."]);
    for (const body of [[], 'hi', 7, null]) {
      assert.deepEqual(err(await post(app, '/tokenize', body)), [400, null, 'invalid_json', 'The request body must be a JSON object.'], JSON.stringify(body));
      assert.deepEqual(err(await post(app, '/detokenize', body)), [400, null, 'invalid_json', 'The request body must be a JSON object.'], JSON.stringify(body));
    }
    app.relu.draining = true;
    assert.equal((await post(app, '/tokenize', { content: 'x' })).statusCode, 503);
    assert.equal((await post(app, '/detokenize', { tokens: [] })).statusCode, 503);
  });
});

test('/detokenize: ids from 0 to n_vocab - 1 become text; anything else is a 400 naming its index', async () => {
  await withApp(routeRuntime(), async (app) => {
    const n = tok.nVocab;
    assert.deepEqual((await post(app, '/detokenize', { tokens: tok.encode('hi é', false) })).json(), { content: 'hi é' });
    assert.deepEqual((await post(app, '/detokenize', { tokens: [] })).json(), { content: '' });
    assert.equal((await post(app, '/detokenize', { tokens: [0, n - 1] })).statusCode, 200);
    assert.deepEqual(err(await post(app, '/detokenize', { tokens: 'hi' })), [400, 'tokens', 'invalid_type', "'tokens' must be an array of token ids."]);
    assert.deepEqual(err(await post(app, '/detokenize', {})), [400, 'tokens', 'invalid_type', "'tokens' must be an array of token ids."]);
    for (const [bad, shown] of [[n, `${n}`], [-1, '-1'], [1.5, '1.5'], ['3', '"3"'], [null, 'null']] as const) {
      assert.deepEqual(err(await post(app, '/detokenize', { tokens: [4, bad] })), [400, 'tokens[1]', 'invalid_value', `'tokens[1]' must be a token id in [0, ${n}), got ${shown}.`]);
    }
  });
});
