// Tool-call parser edge cases (server/http/tool-call-parser.ts), as exact event lists:
// what an unfinished reply leaves (a partial marker, an empty region, a call cut off),
// whitespace after calls, a call whose JSON breaks after it started (Hermes skips to the
// closing tag, the others give up on calls), separators of each format, and unknown
// tools. Each reply is read whole and a character at a time, with the same result.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ToolCallParser, type ToolEvent } from '../../server/http/tool-call-parser.js';
import type { ToolFormatName } from '../../server/http/tool-formats.js';

type Ev = ['text', string] | ['start', number, string] | ['args', number, string];

function events(format: ToolFormatName, pieces: string[]): Ev[] {
  const p = new ToolCallParser(format, ['a', 'bb']);
  const all: ToolEvent[] = [];
  for (const x of pieces) all.push(...p.push(x));
  all.push(...p.finish());
  // Merge neighbouring text and neighbouring args of one call (how pieces fall is not part of the result).
  const out: Ev[] = [];
  for (const e of all) {
    const last = out[out.length - 1];
    if (e.kind === 'text' && last?.[0] === 'text') last[1] += e.text;
    else if (e.kind === 'args' && last?.[0] === 'args' && last[1] === e.index) last[2] += e.text;
    else out.push(e.kind === 'text' ? ['text', e.text] : e.kind === 'start' ? ['start', e.index, e.name] : ['args', e.index, e.text]);
  }
  return out;
}

const CASES: [ToolFormatName, string, Ev[]][] = [
  ['hermes', 'x <tool', [['text', 'x <tool']]],
  ['hermes', 'x <tool_call>  ', [['text', 'x <tool_call>  ']]],
  ['hermes', '<tool_call>{"na', [['text', '<tool_call>{"na']]],
  ['hermes', '<tool_call>{"name": "a", "arguments": {"q": 1', [['start', 0, 'a'], ['args', 0, '{"q": 1']]],
  ['hermes', '<tool_call>{"name": "a"}</tool_call>  \n', [['start', 0, 'a'], ['args', 0, '{}']]],
  ['hermes', '<tool_call>{"name": "a"}</tool_call>  \nok', [['start', 0, 'a'], ['args', 0, '{}'], ['text', '  \nok']]],
  ['hermes', '<tool_call>{"name": "a"} x', [['start', 0, 'a'], ['args', 0, '{}'], ['text', ' x']]],
  ['hermes', '<tool_call>{"name": "a"}</tool_cal', [['start', 0, 'a'], ['args', 0, '{}']]],
  ['hermes', '<tool_call>{"name": "a", "arguments": {} ] junk</tool_call>after', [['start', 0, 'a'], ['args', 0, '{}'], ['text', 'after']]],
  ['hermes', '<tool_call>{"name": "zz"}</tool_call>', [['text', '<tool_call>{"name": "zz"}</tool_call>']]],
  ['hermes', '<tool_call>\n<tool_call>{"name": "a"}</tool_call>', [['text', '<tool_call>\n'], ['start', 0, 'a'], ['args', 0, '{}']]],
  ['hermes', 'text\t<tool_call>{"name":"a"}</tool_call>\r\n', [['text', 'text\t'], ['start', 0, 'a'], ['args', 0, '{}']]],
  ['hermes', '<tool_call>{"name": "a"}</tool_call><tool_call>{"name": "bb", "arguments": {"x": [1]}}</tool_call>', [['start', 0, 'a'], ['args', 0, '{}'], ['start', 1, 'bb'], ['args', 1, '{"x": [1]}']]],
  ['hermes', '[TOOL_CALLS][{"name": "a"}]', [['text', '[TOOL_CALLS][{"name": "a"}]']]],
  ['llama3', '<|python_tag|>', [['text', '<|python_tag|>']]],
  ['llama3', '  <|python_tag|>  ', [['text', '  <|python_tag|>  ']]],
  ['llama3', '<|python', [['text', '<|python']]],
  ['llama3', '<|python_tag|>hello', [['text', '<|python_tag|>hello']]],
  ['llama3', '{"name": "a", "parameters": {}} ; {"name": "bb", "parameters": {"x":2}}', [['start', 0, 'a'], ['args', 0, '{}'], ['start', 1, 'bb'], ['args', 1, '{"x":2}']]],
  ['llama3', '{"name": "a", "parameters": {}}, {"name": "bb"}', [['start', 0, 'a'], ['args', 0, '{}'], ['text', ', {"name": "bb"}']]],
  ['llama3', '{"name": "a", "parameters": {} ] junk', [['start', 0, 'a'], ['args', 0, '{}'], ['text', '] junk']]],
  ['llama3', 'x{"name": "a"}', [['text', 'x{"name": "a"}']]],
  ['mistral', '[TOOL_CALLS][{"name": "a", "arguments": {}}] tail', [['start', 0, 'a'], ['args', 0, '{}'], ['text', ' tail']]],
  ['mistral', '[TOOL_CALLS]{"name": "a", "arguments": {}}, {"name": "bb", "arguments": {}}', [['start', 0, 'a'], ['args', 0, '{}'], ['start', 1, 'bb'], ['args', 1, '{}']]],
  ['mistral', '[TOOL_CALLS]{"name": "a"}; {"name": "bb"}', [['start', 0, 'a'], ['args', 0, '{}'], ['text', '; {"name": "bb"}']]],
  ['mistral', '[TOOL_CALLS][[{"name": "a"}]', [['text', '[TOOL_CALLS][[{"name": "a"}]']]],
  ['mistral', '<tool_call>{"name": "a"}</tool_call>', [['text', '<tool_call>{"name": "a"}</tool_call>']]],
  ['mistral', '[TOOL_CALLS][{"name": "a", "arguments": {} x', [['start', 0, 'a'], ['args', 0, '{}'], ['text', 'x']]],
  // Found by mutation testing (tool-call-object.ts): tabs and CRs between the parts; keys
  // with other values (numbers, literals, strings, objects: skipped); arguments as null, a
  // number or an array (kept as written); an empty first key and one with an escaped quote.
  ['hermes', '<tool_call>{"name":\t"a",\r\n"arguments":\t{"q": 1}}</tool_call>', [['start', 0, 'a'], ['args', 0, '{"q": 1}']]],
  ['hermes', '<tool_call>{"name" : "a", "n": 12, "ok": true , "id": "", "meta": {"k": [1]}, "arguments": {"q": 1}, "z": null}</tool_call>', [['start', 0, 'a'], ['args', 0, '{"q": 1}']]],
  ['hermes', '<tool_call>{"name": "a", "arguments": null}</tool_call>', [['start', 0, 'a'], ['args', 0, 'null']]],
  ['hermes', '<tool_call>{"name": "a", "arguments": 12}</tool_call>', [['start', 0, 'a'], ['args', 0, '12']]],
  ['llama3', '{"name": "a", "parameters": [1, "x"]}', [['start', 0, 'a'], ['args', 0, '[1, "x"]']]],
  ['hermes', '<tool_call>{"": 0, "k\\"ey": 1, "name": "a"}</tool_call>', [['start', 0, 'a'], ['args', 0, '{}']]],
  // A number ended by "]" is not inside an object: the started call breaks there.
  ['mistral', '[TOOL_CALLS][{"name": "a", "n": 1]', [['start', 0, 'a'], ['text', ']']]],
  // The reader is lenient about a trailing comma, not about a key without quotes or colon.
  ['hermes', '<tool_call>{"name": "a",}</tool_call>', [['start', 0, 'a'], ['args', 0, '{}']]],
  ['hermes', '<tool_call>{"name": "a", x: 1}</tool_call>after', [['start', 0, 'a'], ['text', 'after']]],
  ['hermes', '<tool_call>{"name"-"a"}</tool_call>', [['text', '<tool_call>{"name"-"a"}</tool_call>']]],
  ['hermes', '<tool_call>{"name": 5}</tool_call>', [['text', '<tool_call>{"name": 5}</tool_call>']]],
  // One object is one call: a repeated "name" is skipped (it used to start a second call,
  // leaving the first without arguments).
  ['hermes', '<tool_call>{"name": "a", "name": "bb", "arguments": {"q": 1}}</tool_call>', [['start', 0, 'a'], ['args', 0, '{"q": 1}']]],
  ['hermes', '<tool_call>{"arguments": {"q": 1}, "name": "a", "name": "bb"}</tool_call>', [['start', 0, 'a'], ['args', 0, '{"q": 1}']]],
  // Whitespace between the python tag and the call.
  ['llama3', '<|python_tag|> {"name": "a", "parameters": {}}', [['start', 0, 'a'], ['args', 0, '{}']]],
  // A marker that starts inside a partial one.
  ['hermes', 'a <t<tool_call>{"name": "a"}</tool_call>', [['text', 'a <t'], ['start', 0, 'a'], ['args', 0, '{}']]],
  // Separators only between calls, a bracket only right after the marker, and only in Mistral.
  ['mistral', '[TOOL_CALLS],{"name": "a"}', [['text', '[TOOL_CALLS],{"name": "a"}']]],
  ['mistral', '[TOOL_CALLS]{"name": "a"} [{"name": "bb"}]', [['start', 0, 'a'], ['args', 0, '{}'], ['text', '[{"name": "bb"}]']]],
  ['hermes', '<tool_call>[{"name": "a"}]</tool_call>', [['text', '<tool_call>[{"name": "a"}]</tool_call>']]],
  ['mistral', '[TOOL_CALLS]] x', [['text', '[TOOL_CALLS]] x']]],
  ['llama3', '{"name": "a", "parameters": {}}] x', [['start', 0, 'a'], ['args', 0, '{}'], ['text', '] x']]],
  // After calls, the separators read so far are not text.
  ['llama3', '{"name": "a", "parameters": {}}; x', [['start', 0, 'a'], ['args', 0, '{}'], ['text', 'x']]],
  ['mistral', '[TOOL_CALLS]{"name": "a"}, x', [['start', 0, 'a'], ['args', 0, '{}'], ['text', 'x']]],
  // Llama 3 too: a repeated "name" is skipped, one object is one call; a key without its
  // colon breaks the started call and the rest is text.
  ['llama3', '{"name": "a", "name": "zz"} x', [['start', 0, 'a'], ['args', 0, '{}'], ['text', 'x']]],
  ['llama3', '{"name": "a", "q"-1} x', [['start', 0, 'a'], ['text', '-1} x']]],
  // An object that was never a call: Hermes and Mistral read on for markers (also inside it), Llama 3 does not.
  ['hermes', '<tool_call>{"name": "zz"}</tool_call><tool_call>{"name": "a"}</tool_call>', [['text', '<tool_call>{"name": "zz"}</tool_call>'], ['start', 0, 'a'], ['args', 0, '{}']]],
  ['hermes', '<tool_call>{<tool_call>{"name": "a"}</tool_call>', [['text', '<tool_call>{'], ['start', 0, 'a'], ['args', 0, '{}']]],
  ['mistral', '[TOOL_CALLS]{[TOOL_CALLS]{"name": "a"}', [['text', '[TOOL_CALLS]{'], ['start', 0, 'a'], ['args', 0, '{}']]],
  ['llama3', '{"name": "zz"} tail', [['text', '{"name": "zz"} tail']]],
  ['llama3', '{"name": "zz"} <tool_call>{"name": "a"}</tool_call>', [['text', '{"name": "zz"} <tool_call>{"name": "a"}</tool_call>']]],
  // A region opened after a call but left at once is text, marker included; Llama 3 has no tagged blocks.
  ['hermes', '<tool_call>{"name": "a"}</tool_call><tool_call>x', [['start', 0, 'a'], ['args', 0, '{}'], ['text', '<tool_call>x']]],
  ['llama3', '{"name": "a", "parameters": {}} <tool_call>{"name": "bb"}</tool_call>', [['start', 0, 'a'], ['args', 0, '{}'], ['text', '<tool_call>{"name": "bb"}</tool_call>']]],
];

for (const [format, reply, want] of CASES) {
  test(`${format}: ${JSON.stringify(reply)}`, () => {
    assert.deepEqual(events(format, [reply]), want);
    assert.deepEqual(events(format, [...reply]), want, 'a character at a time');
  });
}

test('a call id is call_ and 24 hex digits, new for every call', () => {
  const p = new ToolCallParser('hermes', ['a']);
  const ev = [...p.push('<tool_call>{"name": "a"}</tool_call><tool_call>{"name": "a"}</tool_call>'), ...p.finish()];
  const ids = ev.flatMap((e) => (e.kind === 'start' ? [e.id] : []));
  assert.equal(ids.length, 2);
  for (const id of ids) assert.match(id, /^call_[0-9a-f]{24}$/);
  assert.notEqual(ids[0], ids[1]);
});

test('after finish() everything is text', () => {
  const p = new ToolCallParser('hermes', ['a']);
  p.push('hi');
  p.finish();
  assert.deepEqual(p.push('<tool_call>{"name": "a"}</tool_call>'), [{ kind: 'text', text: '<tool_call>{"name": "a"}</tool_call>' }]);
});

test('text that turns out not to be a call comes out as soon as that is known, not at the end of the reply', () => {
  const p = new ToolCallParser('hermes', ['a']);
  assert.deepEqual(p.push('<tool_call>{"name": "zz"'), [{ kind: 'text', text: '<tool_call>{"name": "zz"' }]);
  const q = new ToolCallParser('hermes', ['a']);
  assert.deepEqual(q.push('<tool_call>{"x": 1}'), [{ kind: 'text', text: '<tool_call>{"x": 1}' }]);
});

test('streaming: text is held back only while it may start a marker, and one piece gives one args event per call', () => {
  const p = new ToolCallParser('hermes', ['a']);
  assert.deepEqual(p.push('Hello, a plain reply <tool'), [{ kind: 'text', text: 'Hello, a plain reply ' }]);
  const ev = p.push('_call>{"name": "a", "arguments": {"x": 1}}</tool_call>');
  assert.deepEqual(ev.map((e) => [e.kind, e.kind === 'start' ? e.name : e.kind === 'args' ? e.text : '']), [['start', 'a'], ['args', '{"x": 1}']]);
  const m = new ToolCallParser('mistral', ['a']);
  assert.deepEqual(m.push('Sure [TOOL'), [{ kind: 'text', text: 'Sure ' }]);
  assert.deepEqual(m.push('S] ok'), [{ kind: 'text', text: '[TOOLS] ok' }]);
});
