// The streaming JSON shape scanner (server/http/json-limits.ts): what it counts must not
// depend on how the body is split into chunks, brackets and commas inside strings
// (escaped quotes included) do not count, and the bounds are exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonShapeScanner, JSON_MAX_DEPTH } from '../../server/http/json-limits.js';
import { buildApp } from '../../server/app.js';

function scanAll(text: string, maxValues: number, chunk: number): { problem: string | null; values: number } {
  const s = new JsonShapeScanner(maxValues);
  const b = Buffer.from(text);
  for (let i = 0; i < b.length; i += chunk) {
    const p = s.feed(b.subarray(i, i + chunk));
    if (p) return { problem: p, values: s.values };
  }
  return { problem: null, values: s.values };
}

test('counts the same whatever the chunking; strings with brackets, commas and escaped quotes do not count', () => {
  const body = JSON.stringify({ prompt: ['a,[b]{c}', 'q\\"[,', '\\\\'], stop: ['],', '"'], n: [[1, 2], { x: [3] }] });
  const one = scanAll(body, 1e9, body.length);
  assert.equal(one.problem, null);
  // Structure outside strings: { [ , , ] , [ , ] , [ [ , ] , { [ ] } ] } -> 1 + opens 7 + commas 7.
  assert.equal(one.values, 1 + 7 + 7);
  for (const chunk of [1, 2, 3, 7]) assert.deepEqual(scanAll(body, 1e9, chunk), one, `chunks of ${chunk}`);
});

test('depth: exactly the limit passes, one more is refused, also across chunks', () => {
  const ok = '['.repeat(JSON_MAX_DEPTH) + ']'.repeat(JSON_MAX_DEPTH);
  const deep = '['.repeat(JSON_MAX_DEPTH + 1) + ']'.repeat(JSON_MAX_DEPTH + 1);
  assert.equal(scanAll(ok, 1e9, 5).problem, null);
  assert.match(scanAll(deep, 1e9, 5).problem!, /nests deeper than 64 levels/);
  // Brackets inside a string are text.
  assert.equal(scanAll(JSON.stringify({ s: deep }), 1e9, 3).problem, null);
});

test('an empty first string does not hide the rest of the body', () => {
  // The scanner starts outside any string and not after a backslash: the quote closing "" ends it.
  const deep = '['.repeat(JSON_MAX_DEPTH + 1) + ']'.repeat(JSON_MAX_DEPTH + 1);
  assert.match(scanAll(`{"":${deep}}`, 1e9, 4).problem!, /nests deeper/);
  assert.match(scanAll(`["",${deep}]`, 1e9, 1).problem!, /nests deeper/);
});

test('depth is nesting, not the number of containers; whitespace between brackets is nothing', () => {
  // A long chat: 100 messages, each an object holding an array of objects (300 containers, 4 deep).
  const chat = { messages: Array.from({ length: 100 }, (_, i) => ({ role: 'user', content: [{ type: 'text', text: `m${i}` }] })) };
  for (const text of [JSON.stringify(chat), JSON.stringify(chat, null, 2)]) assert.equal(scanAll(text, 1e9, 64).problem, null);
  assert.equal(scanAll(JSON.stringify(Array(100).fill([])), 1e9, 7).problem, null);
  // Indented, as a client pretty-printing its body sends it: the bound is the same.
  const nest = (n: number): unknown => (n === 0 ? 1 : [nest(n - 1)]);
  assert.equal(scanAll(JSON.stringify(nest(JSON_MAX_DEPTH), null, 2), 1e9, 16).problem, null);
  assert.match(scanAll(JSON.stringify(nest(JSON_MAX_DEPTH + 1), null, 2), 1e9, 16).problem!, /nests deeper/);
  const nestObj = (n: number): unknown => (n === 0 ? 1 : { k: nestObj(n - 1) });
  assert.match(scanAll(JSON.stringify(nestObj(JSON_MAX_DEPTH + 1), null, '\t'), 1e9, 16).problem!, /nests deeper/);
});

test('values: exactly the bound passes, one more is refused', () => {
  const arr = (n: number) => '[' + Array(n).fill(7).join(',') + ']';
  // [7,7,...] of n elements: 1 + 1 (the array) + (n - 1) commas = n + 1.
  assert.equal(scanAll(arr(99), 100, 4).problem, null);
  assert.match(scanAll(arr(100), 100, 4).problem!, /more than 100 values/);
});

test('the server refuses such bodies with a 400 json_too_complex; other content types are not scanned', async () => {
  // No model (its load failed): what reaches a route answers 503 model_load_failed.
  const app = await buildApp({ runtime: Promise.reject(new Error('no model here')), defaultMetrics: false, jsonMaxValues: 100 });
  try {
    await app.modelReady;
    const post = (payload: string, type = 'application/json') => app.inject({ method: 'POST', url: '/v1/completions', headers: { 'content-type': type }, payload });
    const many = await post(JSON.stringify({ prompt: Array(200).fill(1) }));
    assert.equal(many.statusCode, 400);
    assert.deepEqual(many.json().error.code, 'json_too_complex');
    assert.equal(many.json().error.type, 'invalid_request_error');
    const deep = await post(`{"prompt":${'['.repeat(65)}${']'.repeat(65)}}`);
    assert.equal(deep.statusCode, 400);
    assert.match(deep.json().error.message, /deeper than 64/);
    // Within the bounds the body reaches the route.
    const fine = await post(JSON.stringify({ prompt: Array(50).fill(1) }));
    assert.equal(fine.statusCode, 503);
    assert.equal(fine.json().error.code, 'model_load_failed');
    // A text body is not JSON, however many brackets it holds: it reaches the route.
    const text = await post('['.repeat(200), 'text/plain');
    assert.equal(text.json().error.code, 'model_load_failed');
  } finally {
    await app.close();
  }
});
