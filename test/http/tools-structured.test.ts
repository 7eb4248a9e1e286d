// tools.ts and structured.ts without a model: every refusal with its message and param,
// tool_choice / parallel_tool_calls parsing, the template's tools variable, and the
// grammars (checked by matching texts with the grammar matcher: a tool-call grammar must
// accept a call of the named tool with schema-conforming arguments and nothing else).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTools, templateTools, toolGrammar } from '../../server/http/tools.js';
import { parseStructured } from '../../server/http/structured.js';
import { ApiError } from '../../server/http/errors.js';
import { Matcher } from '../../server/grammar/matcher.js';
import { parseGbnf } from '../../server/grammar/gbnf.js';
import { JSON_OBJECT_GBNF, schemaToGbnf } from '../../server/grammar/json-schema.js';

function refusal(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ApiError, `expected ApiError, got ${err}`);
    return err;
  }
  assert.fail('expected a refusal');
}

function matches(gbnf: string, text: string): boolean {
  const m = new Matcher(parseGbnf(gbnf));
  let s = m.initial;
  for (const ch of text) {
    const n = m.advance(s, ch.codePointAt(0)!);
    if (!n) return false;
    s = n;
  }
  return m.accepting(s);
}

const fn = (name: string, parameters?: unknown, description?: unknown) => ({ type: 'function', function: { name, ...(parameters !== undefined ? { parameters } : {}), ...(description !== undefined ? { description } : {}) } });

const TOOL_CASES: [string, Record<string, unknown>, string, string, string][] = [
  ['tool is an array', { tools: [[]] }, 'tools[0]', 'invalid_type', "'tools[0]' must be an object."],
  ['parallel not boolean', { parallel_tool_calls: 1 }, 'parallel_tool_calls', 'invalid_type', "'parallel_tool_calls' must be a boolean."],
  ['choice without tools', { tool_choice: 'auto' }, 'tool_choice', 'invalid_value', "'tool_choice' needs 'tools'."],
  ['tools not array', { tools: {} }, 'tools', 'invalid_type', "'tools' must be an array."],
  ['tool not object', { tools: [fn('a'), 'b'] }, 'tools[1]', 'invalid_type', "'tools[1]' must be an object."],
  ['tool type', { tools: [{ type: 'code', function: { name: 'a' } }] }, 'tools[0].type', 'invalid_value', "'tools[0].type' must be 'function', got \"code\"."],
  ['function missing', { tools: [{ type: 'function' }] }, 'tools[0].function', 'invalid_type', "'tools[0].function' must be an object."],
  ['name missing', { tools: [{ type: 'function', function: {} }] }, 'tools[0].function.name', 'invalid_value', "'tools[0].function.name' must be 1-64 letters, digits, '_' or '-'."],
  ['name with space', { tools: [fn('a b')] }, 'tools[0].function.name', 'invalid_value', "'tools[0].function.name' must be 1-64 letters, digits, '_' or '-'."],
  ['name too long', { tools: [fn('x'.repeat(65))] }, 'tools[0].function.name', 'invalid_value', "'tools[0].function.name' must be 1-64 letters, digits, '_' or '-'."],
  ['name prefix ok, suffix bad', { tools: [fn('ok!')] }, 'tools[0].function.name', 'invalid_value', "'tools[0].function.name' must be 1-64 letters, digits, '_' or '-'."],
  ['name suffix ok, prefix bad', { tools: [fn('!ok')] }, 'tools[0].function.name', 'invalid_value', "'tools[0].function.name' must be 1-64 letters, digits, '_' or '-'."],
  ['description number', { tools: [fn('a', undefined, 3)] }, 'tools[0].function.description', 'invalid_type', "'tools[0].function.description' must be a string."],
  ['parameters array', { tools: [fn('a', [])] }, 'tools[0].function.parameters', 'invalid_type', "'tools[0].function.parameters' must be a JSON schema object."],
  ['named tool unknown', { tools: [fn('a')], tool_choice: { type: 'function', function: { name: 'b' } } }, 'tool_choice.function.name', 'invalid_value', "'tool_choice' names 'b', which is not in 'tools'."],
  ['choice word', { tools: [fn('a')], tool_choice: 'any' }, 'tool_choice', 'invalid_value', `'tool_choice' must be 'none', 'auto', 'required' or {"type": "function", "function": {"name": ...}}.`],
  ['choice wrong type', { tools: [fn('a')], tool_choice: { type: 'tool', function: { name: 'a' } } }, 'tool_choice', 'invalid_value', `'tool_choice' must be 'none', 'auto', 'required' or {"type": "function", "function": {"name": ...}}.`],
  ['choice function not object', { tools: [fn('a')], tool_choice: { type: 'function', function: 'a' } }, 'tool_choice', 'invalid_value', `'tool_choice' must be 'none', 'auto', 'required' or {"type": "function", "function": {"name": ...}}.`],
  ['choice name not string', { tools: [fn('a')], tool_choice: { type: 'function', function: { name: 1 } } }, 'tool_choice', 'invalid_value', `'tool_choice' must be 'none', 'auto', 'required' or {"type": "function", "function": {"name": ...}}.`],
];

for (const [what, body, param, code, message] of TOOL_CASES) {
  test(`tools refused: ${what}`, () => {
    const e = refusal(() => parseTools(body));
    assert.deepEqual([e.status, e.param, e.code, e.message], [400, param, code, message]);
  });
}

test('tools: none without tools is fine; defaults; every choice form; parallel', () => {
  assert.equal(parseTools({}), null);
  assert.equal(parseTools({ tool_choice: 'none', parallel_tool_calls: true }), null);
  assert.equal(parseTools({ tools: null, tool_choice: null }), null);
  const d = parseTools({ tools: [fn('get-x_1', undefined, 'gets x')] })!;
  assert.deepEqual(d, { tools: [{ name: 'get-x_1', description: 'gets x', parameters: { type: 'object', properties: {} } }], choice: { mode: 'auto' }, parallel: true });
  assert.equal(parseTools({ tools: [fn('x'.repeat(64))] })!.tools[0].name.length, 64);
  for (const c of ['none', 'auto', 'required'] as const) assert.deepEqual(parseTools({ tools: [fn('a')], tool_choice: c })!.choice, { mode: c });
  assert.deepEqual(parseTools({ tools: [fn('a'), fn('b')], tool_choice: { type: 'function', function: { name: 'b' } } })!.choice, { mode: 'named', name: 'b' });
  assert.equal(parseTools({ tools: [fn('a')], parallel_tool_calls: false })!.parallel, false);
  assert.equal(parseTools({ tools: [fn('a')], parallel_tool_calls: null })!.parallel, true);
  const p = { type: 'object', properties: { q: { type: 'string' } } };
  assert.deepEqual(parseTools({ tools: [fn('a', p)] })!.tools[0], { name: 'a', parameters: p });
  assert.deepEqual(parseTools({ tools: [] })!.tools, []);
  assert.deepEqual(parseTools({ tools: [fn('a')], tool_choice: null })!.choice, { mode: 'auto' });
});

test('templateTools gives Hugging Face\'s shape, description only when given', () => {
  const s = parseTools({ tools: [fn('a', undefined, 'does a'), fn('b')] })!;
  assert.deepEqual(templateTools(s), [
    { type: 'function', function: { name: 'a', description: 'does a', parameters: { type: 'object', properties: {} } } },
    { type: 'function', function: { name: 'b', parameters: { type: 'object', properties: {} } } },
  ]);
});

test('toolGrammar (hermes): calls of the listed tools with schema-conforming arguments only', () => {
  const num = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] };
  const s = parseTools({ tools: [fn('a', num), fn('b')], tool_choice: 'required' })!;
  const g = toolGrammar(s);
  const call = (name: string, args: string) => `<tool_call>\n{"name": "${name}", "arguments": ${args}}\n</tool_call>`;
  assert.ok(matches(g, call('a', '{"n": 3}')));
  assert.ok(matches(g, call('b', '{}')));
  assert.ok(!matches(g, call('a', '{"n": "x"}')), 'arguments follow the schema');
  assert.ok(!matches(g, call('c', '{}')), 'only listed tools');
  // parallel: several blocks; not parallel: exactly one.
  assert.ok(matches(g, `${call('a', '{"n": 1}')}\n${call('b', '{}')}`));
  const single = toolGrammar({ ...s, parallel: false });
  assert.ok(matches(single, call('b', '{}')));
  assert.ok(!matches(single, `${call('a', '{"n": 1}')}\n${call('b', '{}')}`));
  // named: only that tool.
  const named = toolGrammar({ ...s, choice: { mode: 'named', name: 'b' } });
  assert.ok(matches(named, call('b', '{}')));
  assert.ok(!matches(named, call('a', '{"n": 1}')));
});

test('toolGrammar (mistral): one [TOOL_CALLS][...] list with "arguments", calls separated by ", " when parallel', () => {
  const num = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] };
  const s = parseTools({ tools: [fn('a', num), fn('b')], tool_choice: 'required' })!;
  const g = toolGrammar(s, 'mistral');
  const a = '{"name": "a", "arguments": {"n": 3}}';
  const b = '{"name": "b", "arguments": {}}';
  assert.ok(matches(g, `[TOOL_CALLS][${a}]`));
  assert.ok(matches(g, `[TOOL_CALLS][${a}, ${b}]`));
  assert.ok(!matches(g, a), 'the [TOOL_CALLS] marker opens the reply');
  assert.ok(!matches(g, `[TOOL_CALLS][${a}`), 'the list is closed');
  assert.ok(!matches(g, '[TOOL_CALLS][{"name": "b", "parameters": {}}]'), 'Mistral says "arguments"');
  const single = toolGrammar({ ...s, parallel: false }, 'mistral');
  assert.ok(matches(single, `[TOOL_CALLS][${b}]`));
  assert.ok(!matches(single, `[TOOL_CALLS][${a}, ${b}]`));
});

test('toolGrammar: parameters given as a $ref into $defs; a single Llama 3 call is required, not optional', () => {
  const ref = { $ref: '#/$defs/o', $defs: { o: { type: 'object', properties: { k: { type: 'integer' } }, required: ['k'] } } };
  const s = parseTools({ tools: [fn('a', ref)], tool_choice: 'required' })!;
  const g = toolGrammar(s);
  assert.ok(matches(g, '<tool_call>\n{"name": "a", "arguments": {"k": 1}}\n</tool_call>'));
  assert.ok(!matches(g, '<tool_call>\n{"name": "a", "arguments": {"k": "x"}}\n</tool_call>'));
  const single = toolGrammar({ ...s, parallel: false }, 'llama3');
  assert.ok(matches(single, '{"name": "a", "parameters": {"k": 2}}'));
  assert.ok(!matches(single, ''), 'an empty reply is not a call');
});

test('toolGrammar (llama3) uses "parameters"; a schema keyword it cannot enforce is a 400 naming it', () => {
  const s = parseTools({ tools: [fn('a'), fn('b', { type: 'object', properties: { s: { type: 'string', pattern: '^x' } } })], tool_choice: 'required' })!;
  const e = refusal(() => toolGrammar(s, 'llama3'));
  assert.equal(e.param, 'tools[1].function.parameters.properties.s.pattern');
  assert.equal(e.code, 'unsupported_parameter');
  const ok = toolGrammar({ ...s, tools: [s.tools[0]] }, 'llama3');
  assert.ok(matches(ok, '{"name": "a", "parameters": {}}'));
  assert.ok(!matches(ok, '{"name": "a", "arguments": {}}'));
  // Named: the unenforceable tool is not in the grammar, so no refusal.
  assert.ok(matches(toolGrammar({ ...s, choice: { mode: 'named', name: 'a' } }, 'llama3'), '{"name": "a", "parameters": {}}'));
  // A schema error at the top of parameters names parameters itself.
  const top = parseTools({ tools: [fn('a', { type: 'object', patternProperties: {} })], tool_choice: 'required' })!;
  const t = refusal(() => toolGrammar(top));
  assert.equal(t.param, 'tools[0].function.parameters.patternProperties');
  // A $ref at the top that points nowhere names the $ref.
  const dangling = parseTools({ tools: [fn('a', { $ref: '#/$defs/missing' })], tool_choice: 'required' })!;
  const d = refusal(() => toolGrammar(dangling));
  assert.equal(d.param, 'tools[0].function.parameters.$ref');
  assert.equal(d.code, 'unsupported_parameter');
});

const SF: [string, Record<string, unknown>, boolean, string, string, string][] = [
  ['response_format string', { response_format: 'json' }, false, 'response_format', 'invalid_type', "'response_format' must be an object."],
  ['response_format type', { response_format: { type: 'xml' } }, false, 'response_format.type', 'invalid_value', "'response_format.type' must be 'text', 'json_object' or 'json_schema', got \"xml\"."],
  ['json_schema not object', { response_format: { type: 'json_schema', json_schema: 'x' } }, false, 'response_format.json_schema', 'invalid_type', "'response_format.json_schema' must be an object with a 'schema'."],
  ['json_schema null', { response_format: { type: 'json_schema', json_schema: null } }, false, 'response_format.json_schema', 'invalid_type', "'response_format.json_schema' must be an object with a 'schema'."],
  ['completions json_schema not object', { json_schema: [] }, true, 'json_schema', 'invalid_type', "'json_schema' must be a JSON schema object."],
  ['grammar not string', { grammar: 5 }, true, 'grammar', 'invalid_type', "'grammar' must be a GBNF string."],
  ['response_format array', { response_format: [] }, false, 'response_format', 'invalid_type', "'response_format' must be an object."],
  ['schema format and grammar', { response_format: { type: 'json_schema', json_schema: { schema: {} } }, grammar: 'root ::= "a"' }, true, 'grammar', 'invalid_value', "Give one of 'response_format', 'grammar': each sets the output's grammar."],
  ['two grammars', { response_format: { type: 'json_object' }, grammar: 'root ::= "a"' }, true, 'grammar', 'invalid_value', "Give one of 'response_format', 'grammar': each sets the output's grammar."],
  ['schema and grammar', { json_schema: {}, grammar: 'root ::= "a"' }, true, 'grammar', 'invalid_value', "Give one of 'json_schema', 'grammar': each sets the output's grammar."],
];

for (const [what, body, completions, param, code, message] of SF) {
  test(`structured refused: ${what}`, () => {
    const e = refusal(() => parseStructured(body, completions));
    assert.deepEqual([e.status, e.param, e.code, e.message], [400, param, code, message]);
  });
}

test('structured: the grammar for each field; llama.cpp fields only on completions', () => {
  assert.equal(parseStructured({}, true), null);
  assert.equal(parseStructured({ json_schema: null, grammar: null, response_format: null }, true), null);
  assert.equal(parseStructured({ response_format: { type: 'text' } }, false), null);
  assert.equal(parseStructured({ response_format: null }, false), null);
  assert.equal(parseStructured({ response_format: { type: 'json_object' } }, false), JSON_OBJECT_GBNF);
  const schema = { type: 'object', properties: { a: { type: 'boolean' } }, required: ['a'] };
  assert.equal(parseStructured({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } }, false), schemaToGbnf(schema));
  // No schema: any JSON value the empty schema allows.
  assert.equal(parseStructured({ response_format: { type: 'json_schema', json_schema: {} } }, false), schemaToGbnf({}));
  assert.equal(parseStructured({ json_schema: schema }, true), schemaToGbnf(schema));
  assert.equal(parseStructured({ grammar: 'root ::= "a"' }, true), 'root ::= "a"');
  // Not read on chat (fields.ts refuses them there).
  assert.equal(parseStructured({ json_schema: schema, grammar: 'root ::= "a"' }, false), null);
  const bad = refusal(() => parseStructured({ grammar: 'root ::= foo' }, true));
  assert.equal(bad.param, 'grammar');
  assert.equal(bad.message, "'grammar' does not parse: rule 'foo' is used but not defined");
  const deep = refusal(() => parseStructured({ json_schema: { type: 'object', properties: { a: { type: 'string', pattern: 'x' } } } }, true));
  assert.deepEqual([deep.param, deep.code], ['json_schema.properties.a.pattern', 'unsupported_parameter']);
  const rf = refusal(() => parseStructured({ response_format: { type: 'json_schema', json_schema: { schema: { type: 'object', properties: { a: { type: 'string', pattern: 'x' } } } } } }, false));
  assert.equal(rf.param, 'response_format.json_schema.schema.properties.a.pattern');
});
