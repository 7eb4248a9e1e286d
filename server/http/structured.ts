// Structured output fields -> one GBNF grammar for the sampler: chat's and completions'
// response_format ({type: "json_object"} or {type: "json_schema", json_schema: {schema}}),
// and on completions llama.cpp's json_schema (a schema) and grammar (GBNF text). The
// grammar is parsed here so that a bad one is a 400 naming the field, before any work.

import { excerpt } from './excerpt.js';
import { invalidField } from './errors.js';
import { GrammarError, parseGbnf } from '../grammar/gbnf.js';
import { JSON_OBJECT_GBNF, SchemaError, schemaToGbnf } from '../grammar/json-schema.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function fromSchema(schema: unknown, param: string): string {
  try {
    const g = schemaToGbnf(schema);
    parseGbnf(g);
    return g;
  } catch (err) {
    if (err instanceof SchemaError) {
      const at = err.path.split('/').filter((x) => x.length > 0).join('.');
      throw invalidField(at ? `${param}.${at}` : param, err.message, 'unsupported_parameter');
    }
    throw err;
  }
}

/** GBNF for the request, or null for free text. `completions`: the llama.cpp fields are read too. */
export function parseStructured(body: Obj, completions: boolean): string | null {
  const found: { param: string; gbnf: string }[] = [];
  const rf = body.response_format;
  if (rf !== undefined && rf !== null) {
    if (!isObj(rf)) throw invalidField('response_format', `'response_format' must be an object.`, 'invalid_type');
    if (rf.type === 'json_object') {
      found.push({ param: 'response_format', gbnf: JSON_OBJECT_GBNF });
    } else if (rf.type === 'json_schema') {
      const js = rf.json_schema;
      if (!isObj(js)) throw invalidField('response_format.json_schema', `'response_format.json_schema' must be an object with a 'schema'.`, 'invalid_type');
      const schema = js.schema ?? {};
      found.push({ param: 'response_format', gbnf: fromSchema(schema, 'response_format.json_schema.schema') });
    } else if (rf.type !== 'text') {
      throw invalidField('response_format.type', `'response_format.type' must be 'text', 'json_object' or 'json_schema', got ${excerpt(rf.type)}.`);
    }
  }
  if (completions) {
    const js = body.json_schema;
    if (js !== undefined && js !== null) {
      if (!isObj(js)) throw invalidField('json_schema', `'json_schema' must be a JSON schema object.`, 'invalid_type');
      found.push({ param: 'json_schema', gbnf: fromSchema(js, 'json_schema') });
    }
    const g = body.grammar;
    if (g !== undefined && g !== null) {
      if (typeof g !== 'string') throw invalidField('grammar', `'grammar' must be a GBNF string.`, 'invalid_type');
      try {
        parseGbnf(g);
      } catch (err) {
        if (err instanceof GrammarError) throw invalidField('grammar', `'grammar' does not parse: ${err.message}`);
        throw err;
      }
      found.push({ param: 'grammar', gbnf: g });
    }
  }
  if (found.length > 1) throw invalidField(found[1].param, `Give one of ${found.map((f) => `'${f.param}'`).join(', ')}: each sets the output's grammar.`);
  return found[0]?.gbnf ?? null;
}
