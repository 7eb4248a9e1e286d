// The tool-call reply parser (server/http/tool-call-parser.ts) in each format: calls and
// text come out the same however the reply is split into pieces (whole, per character,
// random cuts), a call starts as soon as its name is known and its arguments then
// arrive piece by piece, and what is not a call of a known tool stays text.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ToolCallParser, type ToolEvent } from '../../server/http/tool-call-parser.js';
import { detectToolFormat, type ToolFormatName } from '../../server/http/tool-formats.js';
import { rng } from '../seeded-rng.js';

const NAMES = ['get_weather', 'get_time'];

interface Read {
  content: string;
  calls: { name: string; args: string }[];
  events: ToolEvent[];
}

function read(format: ToolFormatName, pieces: string[]): Read {
  const p = new ToolCallParser(format, NAMES);
  const events: ToolEvent[] = [];
  for (const x of pieces) events.push(...p.push(x));
  events.push(...p.finish());
  let content = '';
  const calls: { name: string; args: string }[] = [];
  for (const e of events) {
    if (e.kind === 'text') content += e.text;
    else if (e.kind === 'start') {
      assert.equal(e.index, calls.length, 'calls are numbered in order');
      assert.match(e.id, /^call_[0-9a-f]{24}$/);
      calls.push({ name: e.name, args: '' });
    } else calls[e.index].args += e.text;
  }
  return { content, calls, events };
}


/** Whole, per character and in random cuts: the same content and calls. */
function readEveryWay(format: ToolFormatName, reply: string): Read {
  const whole = read(format, [reply]);
  const strip = (r: Read) => ({ content: r.content, calls: r.calls });
  assert.deepEqual(strip(read(format, [...reply])), strip(whole), `per character: ${JSON.stringify(reply)}`);
  for (let seed = 1; seed <= 20; seed++) {
    const r = rng(seed);
    const pieces: string[] = [];
    for (let at = 0; at < reply.length; ) {
      const n = 1 + Math.floor(r() * 6);
      pieces.push(reply.slice(at, at + n));
      at += n;
    }
    assert.deepEqual(strip(read(format, pieces)), strip(whole), `cut ${JSON.stringify(pieces)}`);
  }
  return whole;
}

const CASES: [ToolFormatName, string, { content: string; calls: [string, string][] }][] = [
  ['hermes', 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "q": "a\\"}b"}}\n</tool_call>\n<tool_call>\n{"name": "nope", "arguments": {}}\n</tool_call>',
    { content: 'Let me check.\n\n<tool_call>\n{"name": "nope", "arguments": {}}\n</tool_call>', calls: [['get_weather', '{"city": "Paris", "q": "a\\"}b"}']] }],
  ['hermes', '<tool_call>\n{"name": "get_time", "arguments": {"zone": "UTC"}}\n</tool_call>\n<tool_call>\n{"arguments": {"city": "Oslo"}, "name": "get_weather"}\n</tool_call>\n',
    { content: '', calls: [['get_time', '{"zone": "UTC"}'], ['get_weather', '{"city": "Oslo"}']] }],
  ['hermes', 'plain <tool text <tool_call> not json </tool_call> end', { content: 'plain <tool text <tool_call> not json </tool_call> end', calls: [] }],
  ['hermes', '<tool_call>\n{"name": "get_time"}\n</tool_call>', { content: '', calls: [['get_time', '{}']] }],
  ['hermes', '<tool_call>\n{"name": "get_time", "arguments": "{\\"zone\\": \\"X\\"}"}\n</tool_call>', { content: '', calls: [['get_time', '{"zone": "X"}']] }],
  ['llama3', '{"name": "get_weather", "parameters": {"city": "Rome", "days": 3}}', { content: '', calls: [['get_weather', '{"city": "Rome", "days": 3}']] }],
  ['llama3', '<|python_tag|>{"name": "get_time", "parameters": {"zone": "CET"}}; {"name": "get_weather", "parameters": {"n": [1, {"a": null}]}}',
    { content: '', calls: [['get_time', '{"zone": "CET"}'], ['get_weather', '{"n": [1, {"a": null}]}']] }],
  ['llama3', 'The answer is {"name": "get_time", "parameters": {}}', { content: 'The answer is {"name": "get_time", "parameters": {}}', calls: [] }],
  ['llama3', '{"answer": 42}', { content: '{"answer": 42}', calls: [] }],
  ['llama3', '  {"name": "get_time", "parameters": {"zone": "A"}} and then', { content: 'and then', calls: [['get_time', '{"zone": "A"}']] }],
  ['mistral', 'Sure. [TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Nice"}}, {"name": "get_time", "arguments": {"zone": "Z"}}]',
    { content: 'Sure. ', calls: [['get_weather', '{"city": "Nice"}'], ['get_time', '{"zone": "Z"}']] }],
  ['mistral', '[TOOL_CALLS] [{"name": "other", "arguments": {}}]', { content: '[TOOL_CALLS] [{"name": "other", "arguments": {}}]', calls: [] }],
  ['mistral', 'no [TOOL tags here [TOOL_CALLS]', { content: 'no [TOOL tags here [TOOL_CALLS]', calls: [] }],
];

for (const [format, reply, want] of CASES) {
  test(`${format}: ${JSON.stringify(reply).slice(0, 70)}`, () => {
    const r = readEveryWay(format, reply);
    const content = r.calls.length > 0 ? r.content.trim() : r.content;
    assert.equal(content, r.calls.length > 0 ? want.content.trim() : want.content);
    assert.deepEqual(r.calls.map((c) => [c.name, c.args]), want.calls);
  });
}

test('a call starts once its name is read, and its arguments come piece by piece', () => {
  const reply = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>';
  const p = new ToolCallParser('hermes', NAMES);
  const seen: { at: number; e: ToolEvent }[] = [];
  [...reply].forEach((ch, at) => p.push(ch).forEach((e) => seen.push({ at, e })));
  const start = seen.find((s) => s.e.kind === 'start')!;
  assert.equal(reply.slice(0, start.at + 1), '<tool_call>\n{"name": "get_weather"', 'started right after the name');
  const args = seen.filter((s) => s.e.kind === 'args');
  assert.equal(args.length, '{"city": "Paris", "unit": "c"}'.length, 'one args event per character fed');
  assert.equal(args.map((s) => (s.e as { text: string }).text).join(''), '{"city": "Paris", "unit": "c"}');
  assert.ok(args[0].at < reply.indexOf('}}'), 'arguments flow before the object closes');
});

test('the format is read off the chat template', () => {
  assert.equal(detectToolFormat("{% for m in messages %}{{ m.content }}{% endfor %}"), 'hermes');
  assert.equal(detectToolFormat('... <tool_call>\\n{"name": ...}</tool_call> ...'), 'hermes');
  assert.equal(detectToolFormat("{{ '[AVAILABLE_TOOLS]' + tools|tojson + '[/AVAILABLE_TOOLS]' }}"), 'mistral');
  assert.equal(detectToolFormat("{%- if m.tool_calls %}{{ '[TOOL_CALLS][' }}{% endif %}"), 'mistral');
  assert.equal(detectToolFormat("{{- '<|start_header_id|>ipython<|end_header_id|>' }}"), 'llama3');
  assert.equal(detectToolFormat('Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.'), 'llama3');
  // The <tool_call> tag outranks the Llama 3 signs: a Hermes template may name an ipython role too.
  assert.equal(detectToolFormat("{% if m.role == 'ipython' %}<tool_response>{% endif %}<tool_call>\\n"), 'hermes');
  assert.equal(detectToolFormat('<tool_call> ... {"name": function name, "parameters": dictionary of ...}'), 'hermes');
});
