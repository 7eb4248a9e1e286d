// POST /v1/chat/completions through app.inject() on a scripted runtime (route-runtime.ts):
// the chat.completion and chunk shapes, n choices, logprobs, usage in streams, tool calls
// read from the reply (whole and streamed, Hermes format: the test template names none),
// required tool_choice as a constraint, and a prefilled assistant reply that keeps its space.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { App } from '../../server/app.js';
import { routeRuntime, SPACE_HI, sseEvents, tok, withApp } from './route-runtime.js';

const chat = (app: App, body: Record<string, unknown>) =>
  app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], ...body }) });

const CALL = '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>';
const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'integer' } } } } }];

test('whole reply: the chat.completion shape, n choices in order, logprobs only when asked', async () => {
  await withApp(routeRuntime({ replies: ['hi there', 'yo'] }), async (app) => {
    const t0 = Math.floor(Date.now() / 1000);
    const r = await chat(app, { n: 2 });
    assert.equal(r.statusCode, 200);
    const b = r.json();
    assert.match(b.id, /^chatcmpl-[0-9a-f]{24}$/);
    assert.ok(b.created >= t0 && b.created <= t0 + 5, `created ${b.created}`);
    assert.deepEqual({ ...b, id: 0, created: 0, usage: 0 }, {
      id: 0, object: 'chat.completion', created: 0, model: 'scripted', system_fingerprint: null, usage: 0,
      choices: [
        { index: 0, message: { role: 'assistant', content: 'hi there', refusal: null }, logprobs: null, finish_reason: 'stop' },
        { index: 1, message: { role: 'assistant', content: 'yo', refusal: null }, logprobs: null, finish_reason: 'stop' },
      ],
    });
    // One byte token per character; the end token is not counted.
    assert.equal(b.usage.completion_tokens, 8 + 2);
    const lp = (await chat(app, { logprobs: true, top_logprobs: 0, max_tokens: 2 })).json().choices[0];
    assert.deepEqual(lp.logprobs, { content: [{ token: 'h', bytes: [104], logprob: -1, top_logprobs: [] }, { token: 'i', bytes: [105], logprob: -1, top_logprobs: [] }], refusal: null });
    assert.equal(lp.finish_reason, 'length');
    // Two ids never repeat.
    assert.notEqual((await chat(app, {})).json().id, b.id);
  });
});

test('streamed: a role chunk, content deltas, the finish chunk, usage only when asked, [DONE]', async () => {
  await withApp(routeRuntime({ replies: ['ok'] }), async (app) => {
    const r = await chat(app, { stream: true });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['content-type'], 'text/event-stream; charset=utf-8');
    const ev = sseEvents(r.body);
    const id = ev[0].id as string;
    assert.match(id, /^chatcmpl-[0-9a-f]{24}$/);
    for (const e of ev) {
      assert.deepEqual([e.id, e.object, e.model, e.system_fingerprint, e.created], [id, 'chat.completion.chunk', 'scripted', null, ev[0].created]);
      assert.ok(!('usage' in e), 'no usage key unless include_usage');
    }
    assert.deepEqual(ev.map((e) => e.choices), [
      [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
      [{ index: 0, delta: { content: 'o' }, logprobs: null, finish_reason: null }],
      [{ index: 0, delta: { content: 'k' }, logprobs: null, finish_reason: null }],
      [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }],
    ]);
    const u = sseEvents((await chat(app, { stream: true, stream_options: { include_usage: true }, logprobs: true })).body);
    // Every chunk carries usage: null, the last one the counts and no choices.
    for (const e of u.slice(0, -1)) assert.equal(e.usage, null);
    const last = u[u.length - 1];
    assert.deepEqual([last.object, last.id, last.choices, (last.usage as { completion_tokens: number }).completion_tokens], ['chat.completion.chunk', u[0].id, [], 2]);
    assert.deepEqual((u[1].choices as { logprobs: unknown }[])[0].logprobs, { content: [{ token: 'o', bytes: [111], logprob: -1, top_logprobs: [] }], refusal: null });
  });
});

test('tool calls: read from the whole reply (content null, finish tool_calls); a reply cut by max_tokens stays length; tool_choice none leaves the text', async () => {
  await withApp(routeRuntime({ replies: [CALL, `Sure. ${CALL}`, 'no call'] }), async (app) => {
    const r = (await chat(app, { tools, n: 3 })).json();
    const [a, b, c] = r.choices;
    assert.match(a.message.tool_calls[0].id, /^call_[0-9a-f]{24}$/);
    assert.deepEqual(a, { index: 0, message: { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: a.message.tool_calls[0].id, type: 'function', function: { name: 'f', arguments: '{"a": 1}' } }] }, logprobs: null, finish_reason: 'tool_calls' });
    // Text before a call is kept (trimmed); a reply without a call is plain content.
    assert.deepEqual([b.message.content, b.message.tool_calls.length, b.finish_reason], ['Sure.', 1, 'tool_calls']);
    assert.deepEqual([c.message, c.finish_reason], [{ role: 'assistant', content: 'no call', refusal: null }, 'stop']);
    // Cut inside the arguments: the call is there, but the reply did not end on its own.
    const cut = (await chat(app, { tools, max_tokens: CALL.length - 5 })).json().choices[0];
    assert.deepEqual([cut.message.tool_calls.length, cut.finish_reason], [1, 'length']);
    // The fifth sequence: the second reply again.
    const none = (await chat(app, { tools, tool_choice: 'none' })).json().choices[0];
    assert.deepEqual([none.message, none.finish_reason], [{ role: 'assistant', content: `Sure. ${CALL}`, refusal: null }, 'stop']);
  });
});

test('tool calls streamed: the first delta names the call, later ones carry argument pieces; logprobs ride along', async () => {
  await withApp(routeRuntime({ replies: [`A ${CALL}`] }), async (app) => {
    const ev = sseEvents((await chat(app, { tools, stream: true, logprobs: true })).body);
    const choices = ev.map((e) => (e.choices as { index: number; delta: Record<string, unknown>; logprobs: { content: { token: string }[] } | null; finish_reason: string | null }[])[0]);
    const deltas = choices.map((c) => c.delta);
    assert.deepEqual(deltas[0], { role: 'assistant', content: '' });
    assert.equal(choices.at(-1)!.finish_reason, 'tool_calls');
    assert.deepEqual(deltas.at(-1), {});
    const starts = deltas.filter((d) => (d.tool_calls as { id?: string }[] | undefined)?.[0].id);
    assert.equal(starts.length, 1);
    const start = (starts[0].tool_calls as { id: string }[])[0];
    assert.deepEqual(start, { index: 0, id: start.id, type: 'function', function: { name: 'f', arguments: '' } });
    const args = deltas.filter((d) => d.tool_calls && !(d.tool_calls as { id?: string }[])[0].id).map((d) => (d.tool_calls as { index: number; function: { arguments: string } }[])[0]);
    assert.ok(args.length > 1);
    for (const a of args) assert.deepEqual(Object.keys(a).sort(), ['function', 'index']);
    assert.equal(args.map((a) => a.function.arguments).join(''), '{"a": 1}');
    assert.equal(deltas.map((d) => d.content ?? '').join(''), 'A ');
    // Every generated token's logprob is listed once, on content chunks, empty ones included.
    const listed = choices.slice(1, -1).flatMap((c) => c.logprobs!.content.map((t) => t.token)).join('');
    assert.equal(listed, `A ${CALL}`);
    for (const c of choices.slice(1, -1)) {
      assert.equal(c.finish_reason, null);
      // A token whose text went into the call rides on an empty content delta.
      if (!c.delta.tool_calls) assert.equal(typeof c.delta.content, 'string', JSON.stringify(c.delta));
    }
  });
});

test('required and named tool_choice constrain the reply; auto does not', async () => {
  await withApp(routeRuntime({ replies: ['plain text'] }), async (app) => {
    const auto = await chat(app, { tools });
    assert.deepEqual([auto.statusCode, auto.json().choices[0].message.content], [200, 'plain text']);
    for (const tool_choice of ['required', { type: 'function', function: { name: 'f' } }]) {
      const r = await chat(app, { tools, tool_choice });
      assert.equal(r.statusCode, 500);
      assert.match(r.json().error.message, /which the grammar does not allow/);
    }
  });
  await withApp(routeRuntime({ replies: [CALL] }), async (app) => {
    const r = (await chat(app, { tools, tool_choice: 'required' })).json().choices[0];
    assert.deepEqual([r.message.tool_calls[0].function, r.finish_reason], [{ name: 'f', arguments: '{"a": 1}' }, 'tool_calls']);
  });
});

test('response_format constrains the reply; a prefilled assistant message is continued with its space', async () => {
  await withApp(routeRuntime({ replies: [[SPACE_HI]] }), async (app) => {
    const json = await chat(app, { response_format: { type: 'json_object' } });
    assert.equal(json.statusCode, 500);
    // A fresh reply drops the leading space of its first token; a continued one keeps it.
    assert.equal((await chat(app, {})).json().choices[0].message.content, 'hi');
    const messages = [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'The answer is' }];
    assert.equal((await chat(app, { messages, continue_final_message: true, add_generation_prompt: false })).json().choices[0].message.content, ' hi');
  });
});

test('refusals: another model is a 404, more choices than slots a 400 naming n, not ready a 503', async () => {
  const rt = routeRuntime({ nSeq: 2 });
  await withApp(rt, async (app) => {
    const other = await chat(app, { model: 'gpt-4o' });
    assert.deepEqual([other.statusCode, other.json().error.param, other.json().error.code], [404, 'model', 'model_not_found']);
    assert.equal((await chat(app, { model: 'scripted' })).statusCode, 200);
    assert.equal((await chat(app, { n: 2 })).statusCode, 200);
    const many = await chat(app, { n: 3 });
    assert.deepEqual([many.statusCode, many.json().error.param], [400, 'n']);
    app.relu.draining = true;
    assert.equal((await chat(app, {})).json().error.code, 'shutting_down');
  });
});

test('streamed with tools but no logprobs: held text comes out at the end; without tools every token is its own delta', async () => {
  await withApp(routeRuntime({ replies: ['see <tool'] }), async (app) => {
    // "<tool" may start a call: held back, then given as text when the reply ends.
    const ev = sseEvents((await chat(app, { tools, stream: true })).body);
    const deltas = ev.map((e) => (e.choices as { delta: { content?: string }; logprobs: unknown }[])[0]);
    assert.equal(deltas.map((d) => d.delta.content ?? '').join(''), 'see <tool');
    for (const d of deltas) assert.equal(d.logprobs, null);
    // No tools: nothing is held, one delta per token (a byte each here).
    const plain = sseEvents((await chat(app, { stream: true })).body).map((e) => (e.choices as { delta: { content?: string } }[])[0].delta);
    assert.deepEqual(plain.slice(1, -1).map((d) => d.content), [...'see <tool']);
  });
  await withApp(routeRuntime({ replies: [CALL] }), async (app) => {
    const plain = sseEvents((await chat(app, { stream: true })).body).map((e) => (e.choices as { delta: { content?: string } }[])[0].delta);
    assert.equal(plain.length, CALL.length + 2);
    assert.deepEqual(plain.at(-1), {});
  });
});

test('whole reply: an empty reply is empty content, not null; text without a call is not trimmed', async () => {
  await withApp(routeRuntime({ replies: ['', ' x '] }), async (app) => {
    const [a, b] = (await chat(app, { tools, n: 2 })).json().choices;
    assert.deepEqual([a.message, b.message], [{ role: 'assistant', content: '', refusal: null }, { role: 'assistant', content: ' x ', refusal: null }]);
    assert.equal((await chat(app, {})).json().choices[0].message.content, '');
  });
});

test('the prompt the model gets: the template with the generation prompt, without it, a prefill left open, the tools', async () => {
  const template = "{% if tools %}<{{ tools[0]['function']['name'] }}>{% endif %}{% for m in messages %}[{{ m.role }}]{{ m.content }}|{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}";
  const rt = routeRuntime({ template });
  await withApp(rt, async (app) => {
    const prompt = () => tok.decode(rt.pickers[rt.pickers.length - 1].prompt as number[]);
    await chat(app, {});
    assert.equal(prompt(), '[user]hi|[assistant]');
    await chat(app, { add_generation_prompt: false });
    assert.equal(prompt(), '[user]hi|');
    await chat(app, { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'Sure' }], continue_final_message: true, add_generation_prompt: false });
    assert.equal(prompt(), '[user]hi|[assistant]Sure');
    await chat(app, { tools });
    assert.equal(prompt(), '<f>[user]hi|[assistant]');
  });
});

test('a prompt that tokenises past the context is refused naming messages, with its token count', async () => {
  // The size check before tokenising lets it through (a byte token is written as 6 characters).
  await withApp(routeRuntime({ nCtx: 64 }), async (app) => {
    const r = await chat(app, { messages: [{ role: 'user', content: 'x'.repeat(100) }] });
    assert.deepEqual([r.statusCode, r.json().error.param, r.json().error.code], [400, 'messages', 'context_length_exceeded']);
    assert.match(r.json().error.message, /maximum context length is 64 tokens, but the prompt is \d+ tokens/);
  });
});
