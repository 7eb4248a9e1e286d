// Tools / function calling for /v1/chat/completions.
//
// The tools go to the chat template as the Jinja `tools` variable (Hugging Face's shape:
// [{type: "function", function: {name, description, parameters}}]); past tool calls and
// tool results ride along in `messages` (assistant `tool_calls` with `arguments` parsed
// into an object, as HF templates expect; role `tool` with `tool_call_id`).
//
// The model calls a tool in the format its chat template teaches (tool-formats.ts:
// Hermes <tool_call> blocks, Llama 3.1 JSON, Mistral [TOOL_CALLS]). With tool_choice
// "required" or a named tool the reply is constrained to calls in that format by a
// grammar whose arguments follow each tool's JSON schema; with "auto" the model may write
// them. Either way tool-call-parser.ts reads the reply, streamed or whole.

import { excerpt } from './excerpt.js';
import { FORMATS, type ToolFormatName } from './tool-formats.js';
import { invalidField } from './errors.js';
import { BASE, SchemaError, schemaRules } from '../grammar/json-schema.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface ToolDef {
  name: string;
  description?: string;
  parameters: Obj;
}

export type ToolChoice = { mode: 'none' | 'auto' | 'required' } | { mode: 'named'; name: string };

export interface ToolSettings {
  tools: ToolDef[];
  choice: ToolChoice;
  parallel: boolean;
}

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** tools, tool_choice, parallel_tool_calls; null when the request has no tools. */
export function parseTools(body: Obj): ToolSettings | null {
  const raw = body.tools;
  const choiceRaw = body.tool_choice;
  const parallel = body.parallel_tool_calls;
  if (parallel !== undefined && parallel !== null && typeof parallel !== 'boolean') {
    throw invalidField('parallel_tool_calls', `'parallel_tool_calls' must be a boolean.`, 'invalid_type');
  }
  if (raw === undefined || raw === null) {
    if (choiceRaw !== undefined && choiceRaw !== null && choiceRaw !== 'none') throw invalidField('tool_choice', `'tool_choice' needs 'tools'.`);
    return null;
  }
  if (!Array.isArray(raw)) throw invalidField('tools', `'tools' must be an array.`, 'invalid_type');
  const tools: ToolDef[] = raw.map((t, i) => {
    const at = `tools[${i}]`;
    if (!isObj(t)) throw invalidField(at, `'${at}' must be an object.`, 'invalid_type');
    if (t.type !== 'function') throw invalidField(`${at}.type`, `'${at}.type' must be 'function', got ${excerpt(t.type)}.`);
    const f = t.function;
    if (!isObj(f)) throw invalidField(`${at}.function`, `'${at}.function' must be an object.`, 'invalid_type');
    if (typeof f.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(f.name)) {
      throw invalidField(`${at}.function.name`, `'${at}.function.name' must be 1-64 letters, digits, '_' or '-'.`);
    }
    if (f.description !== undefined && typeof f.description !== 'string') throw invalidField(`${at}.function.description`, `'${at}.function.description' must be a string.`, 'invalid_type');
    const params = f.parameters ?? { type: 'object', properties: {} };
    if (!isObj(params)) throw invalidField(`${at}.function.parameters`, `'${at}.function.parameters' must be a JSON schema object.`, 'invalid_type');
    return { name: f.name, ...(typeof f.description === 'string' ? { description: f.description } : {}), parameters: params };
  });
  let choice: ToolChoice = { mode: 'auto' };
  if (choiceRaw === 'none' || choiceRaw === 'auto' || choiceRaw === 'required') choice = { mode: choiceRaw };
  else if (isObj(choiceRaw) && choiceRaw.type === 'function' && isObj(choiceRaw.function) && typeof choiceRaw.function.name === 'string') {
    const name = choiceRaw.function.name;
    if (!tools.some((t) => t.name === name)) throw invalidField('tool_choice.function.name', `'tool_choice' names '${name}', which is not in 'tools'.`);
    choice = { mode: 'named', name };
  } else if (choiceRaw !== undefined && choiceRaw !== null) {
    throw invalidField('tool_choice', `'tool_choice' must be 'none', 'auto', 'required' or {"type": "function", "function": {"name": ...}}.`);
  }
  return { tools, choice, parallel: parallel !== false };
}

/** The template's `tools` variable. */
export function templateTools(s: ToolSettings): unknown[] {
  return s.tools.map((t) => ({ type: 'function', function: { name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.parameters } }));
}

/**
 * GBNF for a reply made only of tool calls (required / named): each call's arguments
 * follow its tool's schema. Throws a 400 naming the schema keyword it cannot enforce.
 */
export function toolGrammar(s: ToolSettings, format: ToolFormatName = 'hermes'): string {
  const f = FORMATS[format];
  const tools = s.choice.mode === 'named' ? s.tools.filter((t) => t.name === (s.choice as { name: string }).name) : s.tools;
  const rules: string[] = [];
  const alts = tools.map((t, i) => {
    let conv;
    try {
      conv = schemaRules(t.parameters, `t${i}x`);
    } catch (err) {
      if (err instanceof SchemaError) {
        const idx = s.tools.indexOf(t);
        const path = err.path.split('/').filter((x) => x).join('.');
        throw invalidField(`tools[${idx}].function.parameters${path ? `.${path}` : ''}`, err.message, 'unsupported_parameter');
      }
      throw err;
    }
    if (conv.rules) rules.push(conv.rules);
    return `${JSON.stringify(`{"name": "${t.name}", "${f.argsKey}": `)} ${conv.value} "}"`;
  });
  rules.unshift(`call ::= ${alts.join(' | ')}`);
  rules.unshift(f.root('call', s.parallel));
  return rules.join('\n') + '\n' + BASE;
}
