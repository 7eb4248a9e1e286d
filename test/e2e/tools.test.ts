// Tools / function calling through the official SDK on the tiny model, whose default
// template renders the tools: required and named tool_choice constrain the reply to
// calls whose arguments follow the schema; streamed calls arrive as tool_calls deltas;
// follow-up turns with tool results are accepted; auto replies are split afterwards.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, type TestServer } from './server.js';
import { ChatTemplate } from '../../server/chat/template.js';

let s: TestServer;
before(async () => {
  s = await startServer({ parallel: 2, ctxSize: 1024 });
});
after(async () => {
  await s.close();
});

const tools: OpenAI.ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather', description: 'Weather for a city',
      parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 8 }, unit: { enum: ['c', 'f'] }, days: { type: 'integer' } }, required: ['city', 'unit'] },
    },
  },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string', maxLength: 5 } }, required: ['zone'] } } },
];
const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];

function checkWeather(args: string): void {
  const v = JSON.parse(args) as { city: unknown; unit: unknown };
  assert.equal(typeof v.city, 'string');
  assert.ok(v.unit === 'c' || v.unit === 'f');
}

test('tool_choice required / named: the reply is tool calls with schema-valid arguments', async () => {
  for (const seed of [1, 2]) {
    const r = await s.client.chat.completions.create({ model: 'tiny', messages, tools, tool_choice: { type: 'function', function: { name: 'get_weather' } }, parallel_tool_calls: false, max_tokens: 200, seed });
    const c = r.choices[0];
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.message.content, null);
    assert.ok(c.message.tool_calls && c.message.tool_calls.length >= 1);
    for (const call of c.message.tool_calls!) {
      assert.equal(call.type, 'function');
      assert.match(call.id, /^call_/);
      const fn = (call as OpenAI.ChatCompletionMessageFunctionToolCall).function;
      assert.equal(fn.name, 'get_weather');
      checkWeather(fn.arguments);
    }
  }
  const one = await s.client.chat.completions.create({ model: 'tiny', messages, tools, tool_choice: 'required', parallel_tool_calls: false, max_tokens: 200, seed: 3 });
  assert.equal(one.choices[0].message.tool_calls!.length, 1);
  const fn = (one.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall).function;
  assert.ok(['get_weather', 'get_time'].includes(fn.name));
  JSON.parse(fn.arguments);
});

test('streamed tool calls: arguments arrive in pieces, in the SDK shape, through its stream helper', async () => {
  const stream = s.client.chat.completions.stream({ model: 'tiny', messages, tools, tool_choice: { type: 'function', function: { name: 'get_weather' } }, parallel_tool_calls: false, max_tokens: 200, seed: 5 });
  const pieces: string[] = [];
  const deltas: Record<string, unknown>[] = [];
  stream.on('tool_calls.function.arguments.delta', (e) => pieces.push(e.arguments_delta));
  stream.on('chunk', (ch) => {
    for (const d of ch.choices[0]?.delta.tool_calls ?? []) deltas.push(d as unknown as Record<string, unknown>);
  });
  const done = await stream.finalChatCompletion();
  const c = done.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.ok(!c.message.content, `no content, got ${JSON.stringify(c.message.content)}`);
  assert.equal(c.message.tool_calls!.length, 1);
  const call = c.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
  assert.equal(call.function.name, 'get_weather');
  assert.match(call.id, /^call_/);
  checkWeather(call.function.arguments);
  // The first delta names the call with empty arguments; the rest are argument pieces only.
  assert.deepEqual(deltas[0], { index: 0, id: call.id, type: 'function', function: { name: 'get_weather', arguments: '' } });
  assert.ok(deltas.length > 2, `arguments came in ${deltas.length - 1} deltas`);
  for (const d of deltas.slice(1)) {
    assert.deepEqual(Object.keys(d).sort(), ['function', 'index']);
    assert.deepEqual(Object.keys(d.function as object), ['arguments']);
    assert.equal(d.index, 0);
  }
  assert.equal(pieces.join(''), call.function.arguments);
  assert.ok(pieces.filter((p) => p !== '').length > 1, 'the helper saw several argument pieces');
});

test('parallel streamed calls: each call has its own index and its pieces', async () => {
  let most = 0;
  for (const seed of [7, 8, 9]) {
    const st = await s.client.chat.completions.create({ model: 'tiny', messages, tools, tool_choice: 'required', max_tokens: 300, seed, stream: true });
    const calls: { id?: string; name?: string; args: string }[] = [];
    let finish: string | null = null;
    for await (const ch of st) {
      const c = ch.choices[0];
      if (!c) continue;
      for (const d of c.delta.tool_calls ?? []) {
        if (d.id) {
          assert.equal(d.index, calls.length, 'a new call takes the next index');
          calls[d.index] = { id: d.id, name: d.function!.name, args: '' };
        }
        calls[d.index].args += d.function?.arguments ?? '';
      }
      finish = c.finish_reason ?? finish;
    }
    // The same request unstreamed gives the same calls (same seed, same tokens).
    const whole = await s.client.chat.completions.create({ model: 'tiny', messages, tools, tool_choice: 'required', max_tokens: 300, seed });
    const wc = (whole.choices[0].message.tool_calls ?? []) as OpenAI.ChatCompletionMessageFunctionToolCall[];
    assert.deepEqual(calls.map((c) => [c.name, c.args]), wc.map((c) => [c.function.name, c.function.arguments]));
    assert.equal(finish, whole.choices[0].finish_reason);
    if (finish === 'tool_calls') for (const c of calls) JSON.parse(c.args);
    most = Math.max(most, calls.length);
  }
  assert.ok(most >= 2, 'some seed made several calls');
});

test('follow-up turns: assistant content null with tool_calls, then a tool message', async () => {
  const follow: OpenAI.ChatCompletionMessageParam[] = [
    ...messages,
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 21}' },
  ];
  const r = await s.client.chat.completions.create({ model: 'tiny', messages: follow, tools, max_tokens: 4, tool_choice: 'none' });
  assert.equal(r.choices[0].message.tool_calls, undefined);
  assert.equal(typeof r.choices[0].message.content, 'string');
  // The prompt holds the tools, the call and the result.
  const rt = s.app.relu.runtime!;
  const text = rt.template.render(
    [{ role: 'user', content: 'Weather?' }, { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] }, { role: 'tool', content: '{"temp": 21}', toolCallId: 'call_1' }],
    { tools: tools.map((t) => ({ type: 'function', function: (t as OpenAI.ChatCompletionFunctionTool).function })) },
  );
  assert.match(text, /"name": "get_weather", "description"/);
  assert.match(text, /<tool_call>\n\{"name": "get_weather", "arguments": \{"city": "Paris"\}\}\n<\/tool_call>/);
  assert.match(text, /<\|tool\|>\n\{"temp": 21\}/);
  await assert.rejects(
    s.client.chat.completions.create({ model: 'tiny', messages: [...messages, { role: 'tool', content: 'x' } as OpenAI.ChatCompletionMessageParam], max_tokens: 2 }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'messages[1].tool_call_id',
  );
});

test('auto: free text stays content; a Hugging Face template gets the tools variable', async () => {
  const r = await s.client.chat.completions.create({ model: 'tiny', messages, tools, max_tokens: 6, temperature: 0 });
  assert.ok(r.choices[0].finish_reason === 'stop' || r.choices[0].finish_reason === 'length');
  assert.equal(typeof r.choices[0].message.content, 'string');
  const hf = new ChatTemplate("{% for t in tools %}[{{ t.function.name }}]{% endfor %}{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}", 'test', { bosToken: '<s>', eosToken: '</s>' });
  assert.equal(hf.render([{ role: 'user', content: 'hi' }], { tools: [{ type: 'function', function: { name: 'a' } }, { type: 'function', function: { name: 'b' } }] }), '[a][b]user: hi\n');
  await assert.rejects(
    s.client.chat.completions.create({ model: 'tiny', messages, tools, tool_choice: { type: 'function', function: { name: 'nope' } } }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'tool_choice.function.name',
  );
});
