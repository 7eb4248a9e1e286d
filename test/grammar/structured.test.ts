// Grammar engine and JSON schema -> grammar, without a model: random "models" (random
// logits) sampled under the constraint over a vocabulary whose pieces span JSON
// punctuation must always produce output that parses and validates.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGbnf, GrammarError } from '../../server/grammar/gbnf.js';
import { Matcher } from '../../server/grammar/matcher.js';
import { buildVocab, GrammarConstraint } from '../../server/grammar/constraint.js';
import { schemaToGbnf, SchemaError, JSON_OBJECT_GBNF } from '../../server/grammar/json-schema.js';
import { rng } from '../seeded-rng.js';

const accepts = (g: string, text: string): boolean => {
  const m = new Matcher(parseGbnf(g));
  const s = m.advanceAll(m.initial, [...text].map((c) => c.codePointAt(0)!));
  return s !== null && m.accepting(s);
};

test('GBNF: literals, classes, groups, repetitions, comments, escapes', () => {
  const g = `# a list
root ::= "[" item ("," item){0,2} "]"
item ::= [a-c]+ | "\\"" [^"]* "\\"" | ( "x" | "y" )? "z"`;
  for (const ok of ['[a]', '[abc,b]', '[a,"q w",z]', '[xz,yz,z]']) assert.ok(accepts(g, ok), ok);
  for (const bad of ['[]', '[a,b,c,a]', '[d]', '[a', '["a]', '[xyz]']) assert.ok(!accepts(g, bad), bad);
  assert.ok(accepts('root ::= [\\x41-\\x43] "\\n" "\\u00e9"', 'B\né'));
  assert.throws(() => parseGbnf('root ::= foo'), GrammarError);
  assert.throws(() => parseGbnf('start ::= "a"'), /root/);
  assert.throws(() => parseGbnf('root ::= "a'), /unterminated/);
});

// A vocabulary with pieces that span JSON punctuation, escapes and multi-byte text.
const PIECES = ['{"', '":', '",', '"}', '{', '}', '"', ':', ',', '[', ']', ' ', '", "', '"]', '["', ': "', 'a', 'b', 'ab', 'name', 'tags', 'size', 'color',
  'red', 'green', 'blue', '"red"', 'true', 'false', 'null', 'tr', 'ue', '0', '1', '2', '12', '.', '-', 'e', '+', '\\', '\\n', '\\"', '\\u00', 'e9', 'é', 'x"', ' {', '}]', '}}', ',"', 'inner', 'n', 'q', '\n', 'ok', 'count', 'o', 'k', 'c', 'u', 't', 'i', 'r', 's', 'l', 'g', 'z', ...'abcdefghijklmnopqrstuvwxyz'.split('')];
const EOS = PIECES.length;
const enc = new TextEncoder();
const vocab = buildVocab(PIECES.length + 2, (t) => (t < PIECES.length ? enc.encode(PIECES[t]) : t === EOS ? new Uint8Array(0) : new Uint8Array([0xc3])), (t) => t === EOS);


function generate(gbnf: string, seed: number, maxSteps = 400): string {
  const c = new GrammarConstraint(new Matcher(parseGbnf(gbnf)), vocab, false);
  const r = rng(seed);
  let out = '';
  for (let step = 0; step < maxSteps; step++) {
    const logits = Float32Array.from({ length: PIECES.length + 2 }, () => r() * 4);
    c.apply(logits);
    // Sample from softmax(logits).
    let z = 0;
    for (const v of logits) z += Math.exp(v);
    assert.ok(z > 0, `no token allowed after ${JSON.stringify(out)}`);
    let u = r() * z;
    let t = 0;
    for (; t < logits.length - 1; t++) {
      u -= Math.exp(logits[t]);
      if (u < 0) break;
    }
    while (logits[t] === -Infinity) t--;
    assert.ok(c.accept(t));
    if (t === EOS) return out;
    out += PIECES[t];
  }
  assert.fail(`no end within ${maxSteps} tokens: ${JSON.stringify(out)}`);
}

type S = Record<string, unknown>;
/** Checks the subset the converter supports. */
function valid(schema: S, v: unknown, defs: S = schema): boolean {
  if (schema.$ref) return valid((defs.$defs as S)[(schema.$ref as string).split('/').pop()!] as S, v, defs);
  if (schema.enum) return (schema.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(v));
  if (schema.anyOf) return (schema.anyOf as S[]).some((x) => valid(x, v, defs));
  switch (schema.type) {
    case 'string':
      return typeof v === 'string' && v.length <= ((schema.maxLength as number) ?? Infinity) && v.length >= ((schema.minLength as number) ?? 0);
    case 'number':
      return typeof v === 'number';
    case 'integer':
      return Number.isInteger(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    case 'array': {
      if (!Array.isArray(v)) return false;
      if (v.length < ((schema.minItems as number) ?? 0) || v.length > ((schema.maxItems as number) ?? Infinity)) return false;
      return v.every((x) => valid(schema.items as S, x, defs));
    }
    case 'object': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
      const props = schema.properties as Record<string, S>;
      for (const r of (schema.required as string[]) ?? []) if (!(r in v)) return false;
      return Object.entries(v).every(([k, x]) => k in props && valid(props[k], x, defs));
    }
  }
  return true;
}

const SCHEMA: S = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 6 },
    size: { type: 'number' },
    count: { type: 'integer' },
    color: { enum: ['red', 'green', 'blue'] },
    tags: { type: 'array', items: { type: 'string', maxLength: 4 }, maxItems: 3 },
    inner: { type: 'object', properties: { ok: { type: 'boolean' }, n: { anyOf: [{ type: 'null' }, { $ref: '#/$defs/small' }] } }, required: ['ok'] },
  },
  required: ['name', 'color', 'inner'],
  $defs: { small: { type: 'integer' } },
};

test('JSON schema output always parses and validates, over pieces spanning punctuation', () => {
  const g = schemaToGbnf(SCHEMA);
  for (let seed = 1; seed <= 60; seed++) {
    const text = generate(g, seed);
    let v: unknown;
    assert.doesNotThrow(() => (v = JSON.parse(text)), `seed ${seed}: ${text}`);
    assert.ok(valid(SCHEMA, v), `seed ${seed}: ${text}`);
  }
  // Escapes and multi-byte text in strings.
  assert.ok(accepts(g, '{"name": "a\\"\\né", "color": "red", "inner": {"ok": true}}'));
  assert.ok(!accepts(g, '{"name": "abcdefg", "color": "red", "inner": {"ok": true}}'), 'maxLength');
  assert.ok(!accepts(g, '{"name": "a", "color": "pink", "inner": {"ok": true}}'), 'enum');
  assert.ok(!accepts(g, '{"name": "a", "color": "red"}'), 'required');
});

test('json_object: any JSON object', () => {
  assert.ok(accepts(JSON_OBJECT_GBNF, '{"a": [1, 2.5e3, {"b": null}], "c": "x\\u00e9"}'));
  assert.ok(!accepts(JSON_OBJECT_GBNF, '[1]'));
  assert.ok(!accepts(JSON_OBJECT_GBNF, '{"a": 01}'));
});

test('unsupported schema keywords throw, naming where they are', () => {
  for (const [schema, path] of [
    [{ type: 'string', pattern: 'a+' }, '/pattern'],
    [{ type: 'object', properties: { d: { type: 'string', format: 'date' } } }, '/properties/d/format'],
    [{ type: 'number', minimum: 3 }, '/minimum'],
    [{ allOf: [] }, '/allOf'],
    [{ type: 'object', properties: {}, additionalProperties: { type: 'string' } }, '/additionalProperties'],
  ] as [S, string][]) {
    assert.throws(() => schemaToGbnf(schema), (e: unknown) => e instanceof SchemaError && e.path === path, JSON.stringify(schema));
  }
});

test('the first piece of a chat reply is matched without its leading space', () => {
  const c = new GrammarConstraint(new Matcher(parseGbnf('root ::= "{" "}"')), vocab, true);
  const logits = new Float32Array(PIECES.length + 2);
  c.apply(logits);
  assert.notEqual(logits[PIECES.indexOf(' {')], -Infinity);
});
