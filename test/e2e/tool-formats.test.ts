// Tool-call formats beyond Hermes: synthetic chat templates in the style of Llama 3.1
// (JSON {"name", "parameters"}) and Mistral ([TOOL_CALLS][...]) make the server constrain
// required / named replies to that format and read calls back from it, whole and
// streamed. The reply's raw text (joined from its logprob tokens) shows the format used.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startServer, type TestServer } from './server.js';
import { parseGbnf } from '../../server/grammar/gbnf.js';
import { Matcher } from '../../server/grammar/matcher.js';
import { toolGrammar, type ToolSettings } from '../../server/http/tools.js';

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-tool-formats-'));
const TEMPLATES = {
  llama3:
    "{%- if tools %}<|start_header_id|>system<|end_header_id|>\nRespond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.\n" +
    "{% for t in tools %}{{ t | tojson }}\n{% endfor %}<|eot_id|>{% endif %}" +
    "{% for m in messages %}{% if m.role == 'tool' %}<|start_header_id|>ipython<|end_header_id|>\n{{ m.content }}<|eot_id|>" +
    "{% else %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n{{ m.content }}<|eot_id|>{% endif %}{% endfor %}" +
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n{% endif %}",
  mistral:
    "{{ bos_token }}{% if tools %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}" +
    "{% for m in messages %}{% if m.role == 'user' %}[INST]{{ m.content }}[/INST]{% elif m.tool_calls %}[TOOL_CALLS]{{ m.tool_calls | tojson }}{{ eos_token }}" +
    "{% elif m.role == 'tool' %}[TOOL_RESULTS]{{ m.content }}[/TOOL_RESULTS]{% else %}{{ m.content }}{{ eos_token }}{% endif %}{% endfor %}",
} as const;

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

const tools: OpenAI.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 8 }, unit: { enum: ['c', 'f'] } }, required: ['city', 'unit'] } } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string', maxLength: 5 } }, required: ['zone'] } } },
];
const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
const settings: ToolSettings = { tools: tools.map((t) => ({ name: (t as OpenAI.ChatCompletionFunctionTool).function.name, parameters: (t as OpenAI.ChatCompletionFunctionTool).function.parameters as Record<string, unknown> })), choice: { mode: 'required' }, parallel: true };

function accepts(gbnf: string, text: string): boolean {
  const m = new Matcher(parseGbnf(gbnf));
  const st = m.advanceAll(m.initial, [...text].map((c) => c.codePointAt(0)!));
  return st !== null && m.accepting(st);
}

test('the reply grammars follow each format', () => {
  const w = '{"name": "get_weather", "ARGS": {"city": "Oslo", "unit": "c"}}';
  const t = '{"name": "get_time", "ARGS": {"zone": "UTC"}}';
  const h = (x: string) => `<tool_call>\n${x.replace('ARGS', 'arguments')}\n</tool_call>`;
  assert.ok(accepts(toolGrammar(settings, 'hermes'), `${h(w)}\n${h(t)}`));
  assert.ok(accepts(toolGrammar(settings, 'llama3'), `${w.replace('ARGS', 'parameters')}; ${t.replace('ARGS', 'parameters')}`));
  assert.ok(accepts(toolGrammar(settings, 'mistral'), `[TOOL_CALLS][${w.replace('ARGS', 'arguments')}, ${t.replace('ARGS', 'arguments')}]`));
  assert.ok(!accepts(toolGrammar(settings, 'llama3'), h(w)));
  assert.ok(!accepts(toolGrammar(settings, 'mistral'), w.replace('ARGS', 'arguments')));
  assert.ok(!accepts(toolGrammar({ ...settings, parallel: false }, 'mistral'), `[TOOL_CALLS][${w.replace('ARGS', 'arguments')}, ${t.replace('ARGS', 'arguments')}]`));
});

for (const [format, prefix] of [['llama3', '{"name": "get_weather", "parameters": {'], ['mistral', '[TOOL_CALLS][{"name": "get_weather", "arguments": {']] as const) {
  test(`${format} template: named tool_choice is written in its format and read back, whole and streamed`, async () => {
    const file = join(dir, `${format}.jinja`);
    writeFileSync(file, TEMPLATES[format]);
    const s = await startServer({ parallel: 1, ctxSize: 1024, chatTemplateFile: file });
    servers.push(s);
    const req = { model: 'tiny', messages, tools, tool_choice: { type: 'function', function: { name: 'get_weather' } }, parallel_tool_calls: false, max_tokens: 200 } as const;
    for (const seed of [1, 2]) {
      const r = await s.client.chat.completions.create({ ...req, seed, logprobs: true });
      const c = r.choices[0];
      const raw = c.logprobs!.content!.map((t) => t.token).join('');
      assert.ok(raw.startsWith(prefix), `raw reply ${JSON.stringify(raw)}`);
      assert.equal(c.finish_reason, 'tool_calls');
      assert.equal(c.message.content, null);
      assert.equal(c.message.tool_calls!.length, 1);
      const fn = (c.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall).function;
      assert.equal(fn.name, 'get_weather');
      const args = JSON.parse(fn.arguments) as { city: unknown; unit: unknown };
      assert.equal(typeof args.city, 'string');
      assert.ok(args.unit === 'c' || args.unit === 'f');
      // The raw reply holds exactly these arguments after the prefix.
      assert.ok(raw.startsWith(prefix.slice(0, -1) + fn.arguments), `arguments ${fn.arguments} in ${raw}`);

      const stream = s.client.chat.completions.stream({ ...req, seed });
      const pieces: string[] = [];
      stream.on('tool_calls.function.arguments.delta', (e) => pieces.push(e.arguments_delta));
      const done = await stream.finalChatCompletion();
      const sc = done.choices[0];
      assert.equal(sc.finish_reason, 'tool_calls');
      assert.equal((sc.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall).function.arguments, fn.arguments);
      assert.ok(pieces.length > 1, 'arguments streamed in pieces');
    }
  });
}
