// The small HTTP modules without a model: error mapping (errors.ts), value excerpts
// (excerpt.ts), readiness and model checks (state.ts), router errors (405 / 404 / bad
// URL, router-errors.ts), API keys (auth.ts, through an app whose model failed to load:
// auth runs before any route) and the SSE writer (sse.ts) on a fake response.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, invalidField, toApiError } from '../../server/http/errors.js';
import { excerpt, shortKey } from '../../server/http/excerpt.js';
import { requireReady, checkModel, type ServerState } from '../../server/http/state.js';
import { makeKeyChecker } from '../../server/http/auth.js';
import { SseWriter } from '../../server/http/sse.js';
import { buildApp } from '../../server/app.js';
import type { ModelRuntime } from '../../server/scheduler/runtime.js';
import type { ServerResponse } from 'node:http';

test('ApiError: type follows the status unless given; body shape; invalidField', () => {
  const types = [[400, 'invalid_request_error'], [401, 'authentication_error'], [404, 'not_found_error'], [405, 'invalid_request_error'], [429, 'rate_limit_error'], [499, 'invalid_request_error'], [500, 'server_error'], [502, 'server_error'], [503, 'service_unavailable']] as const;
  for (const [status, type] of types) assert.equal(new ApiError(status, 'm').type, type, `${status}`);
  const e = new ApiError(418, 'tea', { type: 'server_error', param: 'p', code: 'c', headers: { a: 'b' } });
  assert.deepEqual(e.body(), { error: { message: 'tea', type: 'server_error', param: 'p', code: 'c' } });
  assert.deepEqual(e.headers, { a: 'b' });
  assert.equal(e.name, 'ApiError');
  const d = new ApiError(400, 'x');
  assert.deepEqual([d.param, d.code, d.headers], [null, null, {}]);
  const f = invalidField('n', 'bad n');
  assert.deepEqual([f.status, f.param, f.code, f.message], [400, 'n', 'invalid_value', 'bad n']);
  assert.equal(invalidField('n', 'x', 'invalid_type').code, 'invalid_type');
});

test('toApiError maps Fastify\'s errors and hides unknown ones', () => {
  const same = new ApiError(409, 'x');
  assert.equal(toApiError(same), same);
  const m = (err: unknown) => { const a = toApiError(err); return [a.status, a.code, a.message]; };
  assert.deepEqual(m({ code: 'FST_ERR_CTP_BODY_TOO_LARGE' }), [413, 'request_too_large', 'Request body is too large.']);
  assert.deepEqual(m({ code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }), [415, 'unsupported_media_type', 'Unsupported Content-Type; send application/json.']);
  assert.deepEqual(m({ code: 'FST_ERR_CTP_EMPTY_JSON_BODY' }), [400, 'invalid_json', 'The request body is empty; expected a JSON object.']);
  assert.deepEqual(m({ code: 'FST_ERR_CTP_INVALID_JSON_BODY', message: 'Unexpected token' }), [400, 'invalid_json', 'The request body is not valid JSON: Unexpected token']);
  // A parser error without a message still says what was wrong.
  assert.deepEqual(m({ code: 'FST_ERR_CTP_INVALID_JSON_BODY' }), [400, 'invalid_json', 'The request body is not valid JSON: parse error']);
  const syn = Object.assign(new SyntaxError('bad'), { statusCode: 400 });
  assert.deepEqual(m(syn), [400, 'invalid_json', 'The request body is not valid JSON: bad']);
  // A SyntaxError that is not a 400 is an internal error.
  assert.deepEqual(m(new SyntaxError('in code')), [500, 'internal_error', 'The server had an internal error while processing the request.']);
  assert.deepEqual(m({ statusCode: 404, message: 'nope' }), [404, null, 'nope']);
  assert.deepEqual(m({ statusCode: 400 }), [400, null, 'Bad request']);
  assert.deepEqual(m({ statusCode: 499, message: 'edge' }), [499, null, 'edge']);
  for (const err of [{ statusCode: 500, message: 'secret' }, { statusCode: 399, message: 'secret' }, new Error('secret'), null, undefined]) {
    assert.deepEqual(m(err), [500, 'internal_error', 'The server had an internal error while processing the request.']);
  }
});

test('excerpt and shortKey cut long values and describe containers', () => {
  assert.equal(excerpt(undefined), 'undefined');
  assert.equal(excerpt(null), 'null');
  assert.equal(excerpt('a"b'), '"a\\"b"');
  const s40 = 'x'.repeat(40);
  assert.equal(excerpt(s40), JSON.stringify(s40));
  assert.equal(excerpt(s40 + 'yz'), `${JSON.stringify(s40)}... (42 characters)`);
  // A surrogate pair at the cut is not split.
  const pair = 'x'.repeat(39) + '\u{1F600}' + 'tail';
  assert.equal(excerpt(pair), `${JSON.stringify('x'.repeat(39))}... (45 characters)`);
  // A low surrogate at the cut (the pair started before it) is kept whole.
  const low = 'x'.repeat(38) + '\u{1F600}' + 'tail';
  assert.equal(excerpt(low), `${JSON.stringify('x'.repeat(38) + '\u{1F600}')}... (44 characters)`);
  // The ends of the surrogate ranges: U+10000 is \uD800 \uDC00.
  assert.equal(excerpt('x'.repeat(39) + '\u{10000}' + 'tail'), `${JSON.stringify('x'.repeat(39))}... (45 characters)`);
  assert.equal(excerpt('x'.repeat(38) + '\u{10000}' + 'tail'), `${JSON.stringify('x'.repeat(38) + '\u{10000}')}... (44 characters)`);
  assert.equal(excerpt(3.5), '3.5');
  assert.equal(excerpt(false), 'false');
  assert.equal(excerpt([1, 2, 3]), 'an array of 3 items');
  assert.equal(excerpt({ a: 1 }), 'a object');
  assert.equal(excerpt(() => 1), 'a function');
  assert.equal(shortKey(s40), s40);
  assert.equal(shortKey(s40 + 'z'), `${s40}...`);
});

function state(o: Partial<ServerState>): ServerState {
  return { runtime: null, loop: null, metrics: undefined as never, loadError: null, draining: false, maxPrompts: 16, ...o };
}
const rt = (fault?: string | null) => ({ id: 'tiny', ...(fault !== undefined ? { fault: () => fault } : {}) }) as unknown as ModelRuntime;

test('requireReady: draining, loading, failed, faulty, ready; checkModel', () => {
  const err = (s: ServerState) => { try { requireReady(s); } catch (e) { const a = e as ApiError; return [a.status, a.code, a.message, a.headers]; } return null; };
  const loop = {} as never;
  assert.deepEqual(err(state({ draining: true, runtime: rt(), loop })), [503, 'shutting_down', 'The server is shutting down.', { 'retry-after': '5' }]);
  assert.deepEqual(err(state({})), [503, 'model_loading', 'The model is still loading.', { 'retry-after': '2' }]);
  assert.deepEqual(err(state({ runtime: rt() })), [503, 'model_loading', 'The model is still loading.', { 'retry-after': '2' }]);
  assert.deepEqual(err(state({ loadError: new Error('x') })), [503, 'model_load_failed', 'The model failed to load; the server log has the reason.', {}]);
  assert.deepEqual(err(state({ runtime: rt('the file changed'), loop })), [503, 'model_unavailable', 'The model cannot be served: the file changed.', {}]);
  const ok = requireReady(state({ runtime: rt(null), loop }));
  assert.equal(ok.runtime.id, 'tiny');
  assert.equal(ok.loop, loop);
  assert.equal(requireReady(state({ runtime: rt(), loop })).runtime.id, 'tiny');
  checkModel(undefined, rt());
  checkModel('tiny', rt());
  try {
    checkModel('big', rt());
    assert.fail('refused');
  } catch (e) {
    const a = e as ApiError;
    assert.deepEqual([a.status, a.param, a.code, a.message], [404, 'model', 'model_not_found', "The model \"big\" does not exist; this server serves 'tiny'."]);
  }
});

test('makeKeyChecker accepts exactly the configured keys', () => {
  const check = makeKeyChecker(['alpha', 'beta']);
  assert.equal(check('alpha'), true);
  assert.equal(check('beta'), true);
  assert.equal(check('alph'), false);
  assert.equal(check(''), false);
  assert.equal(makeKeyChecker([])('alpha'), false);
});

test('app without a model: API keys, 405 with Allow, 404, bad URL, long path parameter', async () => {
  const app = await buildApp({ runtime: Promise.reject(new Error('no model here')), defaultMetrics: false, apiKeys: ['k1', 'k2'] });
  try {
    await app.modelReady.catch(() => {});
    const get = (url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers });
    const missing = await get('/v1/models');
    assert.equal(missing.statusCode, 401);
    assert.equal(missing.headers['www-authenticate'], 'Bearer');
    assert.deepEqual(missing.json().error, { message: 'Missing API key: send "Authorization: Bearer <key>" or "X-Api-Key: <key>".', type: 'authentication_error', param: null, code: 'missing_api_key' });
    const wrong = await get('/v1/models', { authorization: 'Bearer k3' });
    assert.equal(wrong.statusCode, 401);
    assert.equal(wrong.json().error.code, 'invalid_api_key');
    assert.equal(wrong.json().error.message, 'Incorrect API key provided.');
    assert.equal(wrong.headers['www-authenticate'], 'Bearer');
    // Bearer is case-insensitive, spaces around the key do not count; X-Api-Key works too.
    for (const h of [{ authorization: 'Bearer k1' }, { authorization: '  bearer   k2  ' }, { 'x-api-key': ' k1 ' }, { authorization: 'Basic k1', 'x-api-key': 'k2' }] as Record<string, string>[]) {
      assert.notEqual((await get('/v1/models', h)).statusCode, 401, JSON.stringify(h));
    }
    // The scheme must start the header: a key after some other word is not a bearer token.
    for (const h of [{ authorization: 'Bearer' }, { authorization: 'k1' }, { 'x-api-key': '' }, { authorization: 'NotBearer k1' }, { authorization: 'Basic Bearer k1' }] as Record<string, string>[]) {
      assert.equal((await get('/v1/models', h)).json().error?.code, 'missing_api_key', JSON.stringify(h));
    }
    // /health is public, with or without a query; OPTIONS passes (CORS preflight).
    assert.notEqual((await get('/health')).statusCode, 401);
    assert.notEqual((await get('/health?x=1')).statusCode, 401);
    assert.notEqual((await app.inject({ method: 'OPTIONS', url: '/v1/models' })).statusCode, 401);
    const auth = { authorization: 'Bearer k1' };
    const m405 = await app.inject({ method: 'DELETE', url: '/v1/chat/completions?x=1', headers: auth });
    assert.equal(m405.statusCode, 405);
    assert.equal(m405.headers.allow, 'POST');
    assert.deepEqual(m405.json().error, { message: 'Method DELETE is not allowed on /v1/chat/completions; use POST.', type: 'invalid_request_error', param: null, code: 'method_not_allowed' });
    // A path parameter matches any id; the Allow header lists every method, sorted.
    const m405id = await app.inject({ method: 'DELETE', url: '/v1/models/some-model', headers: auth });
    assert.equal(m405id.statusCode, 405);
    assert.equal(m405id.headers.allow, 'GET, HEAD');
    assert.equal(m405id.json().error.message, 'Method DELETE is not allowed on /v1/models/some-model; use GET or HEAD.');
    // A trailing slash is the same path.
    assert.equal((await app.inject({ method: 'PUT', url: '/v1/models/', headers: auth })).statusCode, 405);
    const allowTwo = await app.inject({ method: 'DELETE', url: '/tokenize', headers: auth });
    if (allowTwo.statusCode === 405) assert.match(allowTwo.json().error.message, /; use [A-Z]+( or [A-Z]+)*\.$/);
    const nf = await get('/v2/nothing', auth);
    assert.equal(nf.statusCode, 404);
    assert.deepEqual(nf.json().error, { message: 'Unknown request URL: GET /v2/nothing', type: 'not_found_error', param: null, code: 'unknown_url' });
    // A path that only resembles a route (regex metacharacters are literal).
    assert.equal((await get('/v1Xmodels', auth)).statusCode, 404);
    const bad = await get('/v1/models/%E0%A4%A', auth);
    assert.equal(bad.statusCode, 400);
    assert.deepEqual(bad.json().error, { message: 'The request URL is not valid (bad percent-encoding).', type: 'invalid_request_error', param: null, code: 'invalid_url' });
    const long = await get(`/v1/models/${'m'.repeat(600)}`, auth);
    assert.equal(long.statusCode, 414);
    assert.equal(long.json().error.code, 'uri_too_long');
    assert.equal(long.json().error.message, 'A path parameter in the request URL is too long.');
  } finally {
    await app.close();
  }
});

test('an app without keys asks for none', async () => {
  const app = await buildApp({ runtime: Promise.reject(new Error('no model here')), defaultMetrics: false });
  try {
    await app.modelReady.catch(() => {});
    assert.notEqual((await app.inject({ method: 'GET', url: '/v1/models' })).statusCode, 401);
  } finally {
    await app.close();
  }
});

/** Enough of a ServerResponse for SseWriter. */
class FakeRes {
  destroyed = false;
  writableEnded = false;
  status = 0;
  headers: Record<string, string> = {};
  written: string[] = [];
  flushed = 0;
  constructor(readonly req?: { headers: Record<string, string | undefined> }) {}
  writeHead(s: number, h: Record<string, string>) { this.status = s; this.headers = h; }
  flushHeaders() { this.flushed++; }
  write(s: string) { this.written.push(s); return true; }
  end() { this.writableEnded = true; }
}

test('SseWriter: headers once (connection as the client asked), data lines, [DONE], nothing after the end', () => {
  const res = new FakeRes({ headers: { connection: 'keep-alive, Close' } });
  const w = new SseWriter(res as unknown as ServerResponse);
  assert.equal(w.open, true);
  w.start({ 'x-extra': '1' });
  w.start({ 'x-other': '2' });
  assert.equal(res.status, 200);
  assert.deepEqual(res.headers, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'close', 'x-accel-buffering': 'no', 'x-extra': '1' });
  assert.equal(res.flushed, 1);
  w.send({ a: 1 });
  w.done();
  assert.deepEqual(res.written, ['data: {"a":1}\n\n', 'data: [DONE]\n\n']);
  assert.equal(w.open, false);
  w.send({ b: 2 });
  w.done();
  w.end();
  assert.equal(res.written.length, 2);
  // close as the only token, or without spaces around it, is still close.
  for (const c of ['close', 'keep-alive,close', 'close,upgrade']) {
    const r = new FakeRes({ headers: { connection: c } });
    new SseWriter(r as unknown as ServerResponse).start();
    assert.equal(r.headers.connection, 'close', c);
  }
  for (const c of [undefined, 'keep-alive', 'closed', 'enclose']) {
    const r = new FakeRes({ headers: { connection: c } });
    new SseWriter(r as unknown as ServerResponse).start();
    assert.equal(r.headers.connection, 'keep-alive', String(c));
  }
  const noReq = new FakeRes();
  new SseWriter(noReq as unknown as ServerResponse).start();
  assert.equal(noReq.headers.connection, 'keep-alive');
  // end() without [DONE]; a destroyed response takes nothing.
  const e = new FakeRes();
  const we = new SseWriter(e as unknown as ServerResponse);
  we.end();
  assert.equal(e.writableEnded, true);
  assert.deepEqual(e.written, []);
  const d = new FakeRes();
  d.destroyed = true;
  const wd = new SseWriter(d as unknown as ServerResponse);
  assert.equal(wd.open, false);
  wd.send({ x: 1 });
  wd.done();
  wd.end();
  assert.deepEqual(d.written, []);
  assert.equal(d.writableEnded, false);
});
