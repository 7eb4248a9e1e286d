// The router's own errors (server/http/router-errors.ts) on a bare Fastify app with a few
// routes shaped unlike the server's: a dot in a path, one path with two methods added
// separately, a wildcard. The served app's 405 / 404 / bad URL answers are checked in
// app-pieces.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { frameworkErrors, KnownRoutes, notFound } from '../../server/http/router-errors.js';

test('405 and 404: literal dots, methods merged and sorted across registrations, wildcards not claimed', async () => {
  const app = Fastify();
  const known = new KnownRoutes();
  known.track(app);
  app.setNotFoundHandler(notFound(known));
  app.get('/v1/a.b', async () => 'ok');
  app.post('/x', async () => 'ok');
  app.get('/x', async () => 'ok');
  app.get('/files/*', async () => 'ok');
  try {
    const req = async (method: 'POST' | 'DELETE', url: string) => {
      const r = await app.inject({ method, url });
      return [r.statusCode, r.headers.allow, r.json().error.code];
    };
    assert.deepEqual(await req('DELETE', '/v1/a.b'), [405, 'GET, HEAD', 'method_not_allowed']);
    // The dot is a dot, not any character.
    assert.deepEqual(await req('POST', '/v1/aXb'), [404, undefined, 'unknown_url']);
    // POST came first, GET (and its HEAD) later: one path, every method, in order.
    assert.deepEqual(await req('DELETE', '/x'), [405, 'GET, HEAD, POST', 'method_not_allowed']);
    // A wildcard route is left out (its pattern is no path): a literal '*' is as unknown as any other file.
    assert.deepEqual(await req('POST', '/files/*'), [404, undefined, 'unknown_url']);
    assert.deepEqual(await req('POST', '/files/x'), [404, undefined, 'unknown_url']);
  } finally {
    await app.close();
  }
});

test('a framework error other than a bad URL or a long parameter is a 400 bad_request', () => {
  let sent: { status?: number; body?: unknown } = {};
  const reply = {
    code(s: number) { sent.status = s; return this; },
    send(b: unknown) { sent.body = b; return this; },
  } as unknown as FastifyReply;
  // What Fastify passes when an async route constraint fails.
  frameworkErrors(Object.assign(new Error('constraint'), { code: 'FST_ERR_ASYNC_CONSTRAINT' }), {} as FastifyRequest, reply);
  assert.deepEqual(sent, { status: 400, body: { error: { message: 'The request could not be routed.', type: 'invalid_request_error', param: null, code: 'bad_request' } } });
  sent = {};
  frameworkErrors(Object.assign(new Error('long'), { code: 'FST_ERR_MAX_PARAM_LENGTH' }), {} as FastifyRequest, reply);
  assert.equal(sent.status, 414);
});
