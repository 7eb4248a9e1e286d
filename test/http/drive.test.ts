// drive() (server/http/drive.ts): one Generation to the client, streamed or whole, with a
// scripted runtime, a real EngineLoop and fake request/reply objects. What the client gets
// (chunks in order, [DONE], usage, the x-request-id header), the status counted and the
// summary kept for the log line, a client that goes away (the job is cancelled, 499), an
// engine failure (500, or 503 when the model file changed) and a shutdown that cuts the
// generation short (503), streamed as an error event or thrown for the error handler.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { drive, type Shaper, type Usage } from '../../server/http/drive.js';
import type { Choice, GenerationPlan } from '../../server/http/generate.js';
import { EngineLoop } from '../../server/scheduler/engine-loop.js';
import { Metrics } from '../../server/observability/metrics.js';
import { ApiError } from '../../server/http/errors.js';
import { ModelFileChangedError } from '../../server/scheduler/model-file-guard.js';
import type { ServerState } from '../../server/http/state.js';
import type { ModelRuntime } from '../../server/scheduler/runtime.js';
import type { DecodeBatch } from '../../server/engine/types.js';

const EOS = 0;
const PIECES = ['</s>', 'a', 'b'];

/**
 * Sequence k picks scripts[k], then EOS. From decode call `holdFrom` on (1: the first),
 * decode calls `decoding` and waits for `gate` when one is set; it throws `fail` when set.
 */
function scripted(scripts: number[][]) {
  const ctl: { gate: Promise<void> | null; holdFrom: number; fail: Error | null; decoding: () => void } = { gate: null, holdFrom: 1, fail: null, decoding: () => {} };
  let calls = 0;
  let pickers = 0;
  const ctx = {
    nSeq: 2,
    nCtx: 16,
    async decode(b: DecodeBatch) {
      if (++calls >= ctl.holdFrom && ctl.gate) {
        ctl.decoding();
        await ctl.gate;
      }
      if (ctl.fail) throw ctl.fail;
      let rows = 0;
      for (const w of b.wantLogits) rows += w;
      return new Float32Array(rows * PIECES.length);
    },
    truncate() {},
  };
  const rt = {
    id: 'scripted', created: 0, nCtx: 16, nSeq: 2, nBatch: 64, ctx, meta: {},
    tokenizer: {
      nVocab: PIECES.length, eosId: EOS, bosText: '', eosText: '', addBos: false,
      encode: () => [1], decode: (t: number[]) => t.map((x) => PIECES[x]).join(''), tokenBytes: () => new Uint8Array(),
      stream: () => ({ push: (t: number) => PIECES[t], flush: () => '' }),
      isEndToken: (t: number) => t === EOS,
    },
    template: undefined as never,
    makePicker: () => {
      const script = scripts[pickers++ % scripts.length];
      let i = 0;
      return () => ({ token: script[i++] ?? EOS });
    },
    dispose() {},
  } as unknown as ModelRuntime;
  return { rt, ctl };
}

const SETTINGS = { temperature: 0, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, seed: 1, logitBias: new Map() };
const PLAN: GenerationPlan = { prompts: [[1, 2]], n: 1, maxTokens: undefined, stop: [], settings: SETTINGS, topLogprobs: null, continuation: true, promptParam: 'prompt' };

class FakeRes extends EventEmitter {
  destroyed = false;
  writableEnded = false;
  headers: Record<string, string> = {};
  written: string[] = [];
  writeHead(_s: number, h: Record<string, string>) { this.headers = h; }
  flushHeaders() {}
  write(s: string) { this.written.push(s); return true; }
  end() { this.writableEnded = true; }
}

function harness(scripts = [[1, 2]], n = 1) {
  const { rt, ctl } = scripted(scripts);
  const loop = new EngineLoop(rt.ctx, { maxWaiting: 2, nBatch: 64 });
  const metrics = new Metrics({ defaultMetrics: false });
  const res = new FakeRes();
  const logs: [string, unknown, string][] = [];
  const req = {
    id: 'req-7', method: 'POST', url: '/v1/completions', routeOptions: { url: '/v1/completions' }, genSummary: null as unknown,
    log: { error: (o: unknown, m: string) => logs.push(['error', o, m]), info: (o: unknown, m: string) => logs.push(['info', o, m]) },
  };
  const reply = { raw: res, hijacked: false, headers: {} as Record<string, string>, elapsedTime: 3,
    hijack() { this.hijacked = true; }, header(k: string, v: string) { this.headers[k] = v; } };
  const calls: string[] = [];
  const shaper: Shaper = {
    opening: (cs) => cs.map((c) => ({ open: c.index })),
    delta: (c: Choice, text) => { calls.push(`delta ${text}`); return { index: c.index, text }; },
    // Two chunks at once: each is sent.
    end: (c: Choice) => [{ end: c.index, reason: c.finishReason }, { after: c.index }],
    usage: (u: Usage) => ({ usage: u }),
    full: (g, u: Usage) => ({ text: g.choices.map((c) => c.text), usage: u }),
  };
  const go = (opts: { stream: boolean; includeUsage?: boolean; user?: string }) =>
    drive(req as unknown as FastifyRequest, reply as unknown as FastifyReply, { metrics } as unknown as ServerState, { runtime: rt, loop }, { ...PLAN, n }, shaper, { includeUsage: false, ...opts });
  const counted = async (name: 'requests' | 'disconnects') => (await metrics[name].get()).values.map((v) => [v.labels.status, v.value]);
  const chunks = () => res.written.map((w) => (w === 'data: [DONE]\n\n' ? '[DONE]' : JSON.parse(w.replace(/^data: /, ''))));
  return { rt, ctl, loop, metrics, res, req, reply, logs, calls, go, counted, chunks };
}

const LONG = [1, 1, 1, 1, 1, 1, 1, 1];
const USAGE = { prompt_tokens: 2, completion_tokens: 2, total_tokens: 4, prompt_tokens_details: { cached_tokens: 0 } };

test('whole: the shaper\'s full body with usage, the request id header, the summary; nothing streamed', async () => {
  const h = harness();
  assert.deepEqual(await h.go({ stream: false, user: 'u-1' }), { text: ['ab'], usage: USAGE });
  assert.deepEqual(h.reply.headers, { 'x-request-id': 'req-7' });
  assert.equal(h.reply.hijacked, false);
  assert.deepEqual(h.calls, []);
  assert.deepEqual(h.res.written, []);
  const s = h.req.genSummary as Record<string, unknown>;
  assert.deepEqual([s.completionTokens, s.finishReason, s.clientDisconnected, s.stream, s.user], [2, 'stop', false, false, 'u-1']);
  // The status is counted by the onResponse hook for a body reply, not here.
  assert.deepEqual(await h.counted('requests'), []);
  // A close after the reply is not a disconnect.
  h.res.emit('close');
  assert.deepEqual(await h.counted('disconnects'), [[undefined, 0]]);
  const h2 = harness();
  await h2.go({ stream: false });
  assert.equal('user' in (h2.req.genSummary as object), false);
  await h.loop.close();
  await h2.loop.close();
});

test('streamed: opening chunks, deltas, every end chunk, usage when asked, [DONE]; counted 200', async () => {
  const h = harness();
  assert.equal(await h.go({ stream: true, includeUsage: true }), undefined);
  assert.equal(h.reply.hijacked, true);
  assert.equal(h.res.headers['x-request-id'], 'req-7');
  assert.deepEqual(h.chunks(), [
    { open: 0 }, { index: 0, text: 'a' }, { index: 0, text: 'b' }, { end: 0, reason: 'stop' }, { after: 0 }, { usage: USAGE }, '[DONE]',
  ]);
  assert.equal(h.res.writableEnded, true);
  assert.deepEqual(await h.counted('requests'), [['200', 1]]);
  assert.equal((h.req.genSummary as Record<string, unknown>).stream, true);
  const h2 = harness();
  await h2.go({ stream: true });
  assert.deepEqual(h2.chunks().slice(-2), [{ after: 0 }, '[DONE]']);
  h.res.emit('close');
  assert.deepEqual(await h.counted('disconnects'), [[undefined, 0]]);
  await h.loop.close();
  await h2.loop.close();
});

/** Runs go() with decode held until the client closes the connection. */
async function disconnecting(h: ReturnType<typeof harness>, stream: boolean) {
  let release!: () => void;
  h.ctl.gate = new Promise((r) => (release = r));
  const started = new Promise<void>((r) => (h.ctl.decoding = r));
  const out = h.go({ stream });
  await started;
  h.res.emit('close');
  release();
  return out;
}

test('a client that goes away: the job is cancelled, counted as a disconnect and a 499, no [DONE]', async () => {
  const h = harness([LONG]);
  assert.equal(await disconnecting(h, true), undefined);
  assert.deepEqual(await h.counted('disconnects'), [[undefined, 1]]);
  assert.deepEqual(await h.counted('requests'), [['499', 1]]);
  assert.ok(!h.res.written.includes('data: [DONE]\n\n'));
  assert.equal((h.req.genSummary as Record<string, unknown>).clientDisconnected, true);
  assert.ok(((h.req.genSummary as Record<string, unknown>).completionTokens as number) < 8, 'cancelled before the end');
  const w = harness([LONG]);
  assert.equal(await disconnecting(w, false), undefined);
  assert.equal(w.reply.hijacked, true);
  assert.deepEqual(w.reply.headers, {});
  assert.deepEqual(await w.counted('requests'), [['499', 1]]);
  assert.deepEqual(await w.counted('disconnects'), [[undefined, 1]]);
  await h.loop.close();
  await w.loop.close();
});

test('an engine failure: 500 (503 when the model file changed), logged; streamed as an error event', async () => {
  const cases: [Error, number, string, string][] = [
    [new Error('boom'), 500, 'internal_error', 'Generation failed: boom'],
    [new ModelFileChangedError('the file changed'), 503, 'model_unavailable', 'The model cannot be served: the file changed.'],
  ];
  for (const [fail, status, code, message] of cases) {
    const h = harness();
    h.ctl.fail = fail;
    await assert.rejects(h.go({ stream: false }), (e: unknown) => e instanceof ApiError && e.status === status && e.code === code && e.message === message);
    assert.deepEqual(h.logs.map((l) => [l[0], l[2], (l[1] as { err: unknown }).err]), [['error', 'generation failed', fail]]);
    const s = harness();
    s.ctl.fail = fail;
    await s.go({ stream: true });
    assert.deepEqual(s.chunks(), [{ open: 0 }, { error: { message, type: status === 500 ? 'server_error' : 'service_unavailable', param: null, code } }]);
    assert.equal(s.res.writableEnded, true);
    assert.deepEqual(await s.counted('requests'), [[String(status), 1]]);
    assert.deepEqual(s.logs.filter((l) => l[2] === 'generation failed').map((l) => [l[0], (l[1] as { err: unknown }).err]), [['error', fail]]);
    await h.loop.close();
    await s.loop.close();
  }
});

/** Starts a request, closes the loop while a decode is held, and returns what the request settled with. */
async function closeMidDecode(h: ReturnType<typeof harness>, stream: boolean): Promise<unknown> {
  let release!: () => void;
  h.ctl.gate = new Promise((r) => (release = r));
  const started = new Promise<void>((r) => (h.ctl.decoding = r));
  // Settled as a value, so the rejection is never unhandled while the loop closes.
  const out = h.go({ stream }).then((v) => v, (e: unknown) => e);
  await started;
  const closing = h.loop.close();
  release();
  await closing;
  return out;
}

test('a shutdown that cuts the generation short: 503 shutting_down, thrown or as an error event', async () => {
  for (const stream of [false, true]) {
    const h = harness([LONG]);
    const got = await closeMidDecode(h, stream);
    const message = 'The server is shutting down; generation was cut short.';
    if (!stream) {
      assert.ok(got instanceof ApiError && got.status === 503 && got.code === 'shutting_down' && got.message === message, String(got));
    } else {
      assert.equal(got, undefined);
      const c = h.chunks();
      assert.deepEqual(c[c.length - 1], { error: { message, type: 'service_unavailable', param: null, code: 'shutting_down' } });
      assert.ok(!c.includes('[DONE]'));
      assert.deepEqual(await h.counted('requests'), [['503', 1]]);
      assert.deepEqual(h.logs.filter((l) => l[2] === 'generation failed'), []);
    }
  }
});

test('a shutdown that cuts one choice short while another finished is still a 503', async () => {
  for (const stream of [false, true]) {
    // Choice 0 ends at its second step; choice 1 is still generating when the loop closes.
    const h = harness([[1], LONG], 2);
    h.ctl.holdFrom = 4;
    const got = await closeMidDecode(h, stream);
    if (!stream) assert.ok(got instanceof ApiError && got.status === 503 && got.code === 'shutting_down', String(got));
    else assert.deepEqual(await h.counted('requests'), [['503', 1]]);
    assert.equal((h.req.genSummary as Record<string, unknown>).finishReason, 'stop,cancelled');
  }
});
