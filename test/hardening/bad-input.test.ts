// test-runner: alone (it times the refusal of a huge prompt)
// Hostile and malformed requests through app.inject() on the real tiny model: each must
// get its documented status with an OpenAI-shaped error body ({error: {message, type,
// param, code}}) whose message quotes at most a short excerpt of the input, and the
// server must still answer /health afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp, type App } from '../../server/app.js';
import { tinyRuntime } from '../e2e/server.js';
import type { ModelRuntime } from '../../server/scheduler/runtime.js';

let rt: ModelRuntime;
let app: App;
before(async () => {
  rt = await tinyRuntime({ parallel: 2, ctxSize: 128 });
  app = await buildApp({ runtime: rt, ownsRuntime: false, defaultMetrics: false, bodyLimit: 2 << 20 });
  await app.modelReady;
});
after(async () => {
  await app.close();
  rt.dispose();
});

interface Res {
  statusCode: number;
  body: string;
  headers: Record<string, unknown>;
}

/** Status, shape, a short message; then /health still answers 200. */
async function expectError(res: Res, status: number, code?: string, param?: string | null): Promise<void> {
  assert.equal(res.statusCode, status, res.body.slice(0, 300));
  const body = JSON.parse(res.body) as { error: Record<string, unknown> };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof body.error.message, 'string');
  assert.equal(typeof body.error.type, 'string');
  assert.ok(res.body.length < 600, `error body of ${res.body.length} bytes`);
  if (code !== undefined) assert.equal(body.error.code, code);
  if (param !== undefined) assert.equal(body.error.param, param);
  const h = await app.inject({ method: 'GET', url: '/health' });
  assert.equal(h.statusCode, 200);
}

const post = (url: string, payload: string | object, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, payload: typeof payload === 'string' ? payload : JSON.stringify(payload), headers: { 'content-type': 'application/json', ...headers } });

/** A JSON text: `inner` wrapped in `depth` arrays. */
const nested = (depth: number, inner = '1') => '['.repeat(depth) + inner + ']'.repeat(depth);

// 50 deep (under 64 with the request around it) the body is parsed and the validator
// names the field; deeper ones are refused while they stream in, before parsing
// (server/http/json-limits.ts).
for (const depth of [50, 3000, 5000, 20000]) {
  test(`values nested ${depth} deep are a 400 with a short message`, async () => {
    const streamed = depth > 64;
    const expectDeep = (res: Res, code?: string, param?: string) =>
      streamed ? expectError(res, 400, 'json_too_complex', null) : expectError(res, 400, code, param);
    const user = (content: string) => `{"role":"user","content":${content}}`;
    await expectDeep(await post('/v1/completions', `{"prompt":[1,${nested(depth)}]}`), undefined, 'prompt[0]');
    await expectDeep(await post('/v1/completions', `{"prompt":[[1,${nested(depth)}]]}`), undefined, 'prompt[0][1]');
    await expectDeep(await post('/v1/chat/completions', `{"messages":[${user(nested(depth))}]}`), 'invalid_type', 'messages[0].content[0]');
    await expectDeep(await post('/v1/chat/completions', `{"messages":[${user(`[{"type":"text","text":${nested(depth, '"t"')}}]`)}]}`), 'invalid_type', 'messages[0].content[0].text');
    await expectDeep(await post('/v1/chat/completions', `{"messages":[${user(`[{"type":${nested(depth, '"text"')},"text":"t"}]`)}]}`), undefined, 'messages[0].content[0].type');
    await expectDeep(await post('/v1/chat/completions', `{"messages":[{"role":${nested(depth, '"user"')},"content":"x"}]}`), 'invalid_value', 'messages[0].role');
    await expectDeep(await post('/v1/chat/completions', `{"messages":[${user('"x"')}],"logit_bias":{"1":${nested(depth)}}}`), undefined, 'logit_bias.1');
    await expectDeep(await post('/detokenize', `{"tokens":[1,${nested(depth)}]}`), undefined, 'tokens[1]');
    await expectDeep(await post('/v1/chat/completions', `{"messages":[${user('"x"')}],"stop":${nested(depth, '"s"')}}`));
    await expectDeep(await post('/v1/chat/completions', `{"messages":[${user('"x"')}],"model":${nested(depth, '"m"')}}`), 'invalid_type', 'model');
    // Deep objects too, where a key is checked.
    const deepObj = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    await expectDeep(await post('/v1/chat/completions', `{"messages":[${user('"x"')}],"stream_options":${deepObj}}`));
  });
}

test('huge strings are quoted as a short excerpt', async () => {
  const big = 'r'.repeat(900_000);
  const role = await post('/v1/chat/completions', { messages: [{ role: big, content: 'x' }] });
  await expectError(role, 400, 'invalid_value', 'messages[0].role');
  assert.match(JSON.parse(role.body).error.message, /900000 characters/);
  await expectError(await post('/v1/chat/completions', { messages: [{ role: 'user', content: [{ type: big, text: 'x' }] }] }), 400, undefined, 'messages[0].content[0].type');
  await expectError(await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], logit_bias: { [big]: 1 } }), 400);
  await expectError(await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], model: big }), 404, 'model_not_found', 'model');
  await expectError(await post('/detokenize', { tokens: [big] }), 400, undefined, 'tokens[0]');
  // A surrogate pair cut in half by the excerpt must not reach the reply.
  const emoji = await post('/v1/chat/completions', { messages: [{ role: 'a'.repeat(39) + '😀'.repeat(100), content: 'x' }] });
  await expectError(emoji, 400);
  assert.doesNotMatch(JSON.parse(emoji.body).error.message, /[\ud800-\udbff](?![\udc00-\udfff])/);
});

test('router errors are OpenAI-shaped: bad percent-encoding, over-long parameters, wrong methods', async () => {
  await expectError(await app.inject({ method: 'GET', url: '/v1/models/%ff%fe' }), 400, 'invalid_url');
  await expectError(await app.inject({ method: 'GET', url: `/v1/models/${'a'.repeat(8000)}` }), 414, 'uri_too_long');
  const unknown = await app.inject({ method: 'GET', url: `/v2/${'b'.repeat(8000)}` });
  await expectError(unknown, 404, 'unknown_url');
  for (const [method, url, allow] of [
    ['GET', '/v1/chat/completions', 'POST'],
    ['DELETE', '/v1/completions', 'POST'],
    ['POST', '/health', 'GET'],
    ['PUT', '/v1/models/tiny', 'GET'],
    ['POST', '/v1/models', 'GET'],
    ['GET', '/tokenize', 'POST'],
  ] as const) {
    const res = await app.inject({ method, url });
    await expectError(res, 405, 'method_not_allowed');
    assert.match(String(res.headers.allow), new RegExp(allow));
  }
  await expectError(await app.inject({ method: 'GET', url: '/v1/models/tiny/extra' }), 404, 'unknown_url');
});

test('types, ranges and encodings', async () => {
  const msg = [{ role: 'user', content: 'x' }];
  for (const [field, value] of [
    ['temperature', 'hot'], ['temperature', -1], ['top_p', 0], ['n', 1.5], ['n', 0],
    ['max_tokens', -1], ['max_tokens', 2 ** 60], ['seed', 'x'], ['stream', 'yes'], ['logprobs', 3], ['top_logprobs', 99],
    ['presence_penalty', 3], ['stop', [1]], ['stop', ['a', 'b', 'c', 'd', 'e']], ['user', 5], ['logit_bias', []], ['logit_bias', { '-1': 1 }],
    ['logit_bias', { '1': 1000 }], ['stream_options', { include_usage: true }],
  ] as const) {
    await expectError(await post('/v1/chat/completions', { messages: msg, [field]: value }), 400);
  }
  // 1e400 parses as Infinity (JSON.stringify would send null, so the text is written out).
  const inf = await post('/v1/chat/completions', '{"messages":[{"role":"user","content":"x"}],"temperature":1e400}');
  await expectError(inf, 400, 'invalid_type', 'temperature');
  for (const messages of [[], 'hi', [null], [{ role: 'user' }], [{ role: 'user', content: 5 }], [{ role: 'user', content: [{ type: 'image_url' }] }], [{ role: 'tool', content: 'x' }]]) {
    await expectError(await post('/v1/chat/completions', { messages }), 400);
  }
  for (const prompt of [[], [[]], [-1], [1.5], [1e9], {}, [{}], null, Array.from({ length: 17 }, () => 'p')]) {
    await expectError(await post('/v1/completions', { prompt }), 400);
  }
  // Encodings: invalid UTF-8 in JSON, a BOM-less UTF-16 body, a text body, a lying content-type.
  await expectError(await app.inject({ method: 'POST', url: '/v1/completions', payload: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), headers: { 'content-type': 'application/json' } }), 400);
  await expectError(await app.inject({ method: 'POST', url: '/v1/completions', payload: Buffer.from('{"prompt":"x"}', 'utf16le'), headers: { 'content-type': 'application/json' } }), 400);
  await expectError(await app.inject({ method: 'POST', url: '/v1/completions', payload: 'prompt=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415);
  await expectError(await post('/v1/completions', '{"prompt": "x"'), 400, 'invalid_json');
  await expectError(await post('/v1/completions', '{"__proto__": {"x": 1}, "prompt": "x"}'), 400);
  await expectError(await post('/tokenize', { content: 'x', add_special: 'yes' }), 400, 'invalid_type', 'add_special');
  await expectError(await post('/detokenize', { tokens: 'abc' }), 400, 'invalid_type', 'tokens');
});

test('sizes: a body over the limit is 413; a huge prompt is refused by its size before tokenising', async () => {
  await expectError(await post('/v1/completions', { prompt: 'x'.repeat(3 << 20) }), 413);
  const t0 = performance.now();
  const res = await post('/v1/completions', { prompt: 'word '.repeat(200_000) });
  await expectError(res, 400, 'context_length_exceeded', 'prompt');
  assert.match(JSON.parse(res.body).error.message, /at least \d+ tokens/);
  assert.ok(performance.now() - t0 < 1000);
  await expectError(await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'word '.repeat(200_000) }] }), 400, 'context_length_exceeded', 'messages');
});

test('the public /health hides the load error detail (paths, file bytes)', async () => {
  const secret = new Error('cannot open /srv/private/models/x.gguf: bad magic "\\x7fELF"');
  const bad = await buildApp({ runtime: Promise.reject(secret), defaultMetrics: false });
  await bad.modelReady;
  const h = await bad.inject({ method: 'GET', url: '/health' });
  assert.equal(h.statusCode, 503);
  assert.equal(JSON.parse(h.body).status, 'error');
  assert.doesNotMatch(h.body, /srv|private|ELF|gguf/);
  const r = await bad.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: 'x' } });
  assert.equal(r.statusCode, 503);
  assert.doesNotMatch(r.body, /srv|private|ELF/);
  await bad.close();
});
