// Tools / function calling for /v1/chat/completions.
//
// The tools go to the chat template as the Jinja `tools` variable (Hugging Face's shape:
// [{type: "function", function: {name, description, parameters}}]); past tool calls and
// tool results ride along in `messages` (assistant `tool_calls` with `arguments` parsed
// into an object, as HF templates expect; role `tool` with `tool_call_id`).
//
// The model calls a tool by writing, Hermes / Qwen style,
//   <tool_call>
//   {"name": "get_weather", "arguments": {"city": "Paris"}}
//   </tool_call>
// (one block per call). With tool_choice "required" or a named tool the reply is
// constrained to such blocks by a grammar whose arguments follow each tool's JSON schema;
// with "auto" the model may write them, and the reply is split afterwards (streamed: text
// is passed on until a block starts, the calls go out as tool_calls deltas at the end).

import { excerpt } from './excerpt.js';
import { randomBytes } from 'node:crypto';
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

export const OPEN = '<tool_call>';
export const CLOSE = '</tool_call>';

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
export function toolGrammar(s: ToolSettings): string {
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
    return `"${OPEN}\\n{\\"name\\": \\"${t.name}\\", \\"arguments\\": " ${conv.value} "}\\n${CLOSE}"`;
  });
  rules.unshift(`call ::= ${alts.join(' | ')}`);
  rules.unshift(s.parallel ? 'root ::= call ("\\n" call)*' : 'root ::= call');
  return rules.join('\n') + '\n' + BASE;
}

function callId(): string {
  return `call_${randomBytes(12).toString('hex')}`;
}

/** Splits a finished reply into text and tool calls (blocks that do not parse stay text). */
export function extractToolCalls(text: string, tools: readonly ToolDef[]): { content: string; calls: ToolCall[] } {
  const calls: ToolCall[] = [];
  let content = '';
  let at = 0;
  for (;;) {
    const open = text.indexOf(OPEN, at);
    if (open < 0) break;
    const close = text.indexOf(CLOSE, open + OPEN.length);
    if (close < 0) break;
    const call = parseCall(text.slice(open + OPEN.length, close), tools);
    if (call) {
      content += text.slice(at, open);
      calls.push(call);
    } else {
      content += text.slice(at, close + CLOSE.length);
    }
    at = close + CLOSE.length;
  }
  content += text.slice(at);
  return { content: calls.length > 0 ? content.trim() : content, calls };
}

function parseCall(inner: string, tools: readonly ToolDef[]): ToolCall | null {
  let v: unknown;
  try {
    v = JSON.parse(inner);
  } catch {
    return null;
  }
  if (!isObj(v) || typeof v.name !== 'string' || !tools.some((t) => t.name === v.name)) return null;
  const args = v.arguments ?? {};
  return { id: callId(), type: 'function', function: { name: v.name, arguments: typeof args === 'string' ? args : JSON.stringify(args) } };
}

/**
 * Streaming: passes text on until a tool-call block may be starting (holding back a tail
 * that could be the start of `<tool_call>`), then keeps the rest for the end.
 */
export class ToolStreamSplitter {
  private held = '';
  private inCall = false;
  private all = '';

  push(text: string): string {
    this.all += text;
    if (this.inCall) return '';
    const buf = this.held + text;
    const open = buf.indexOf(OPEN);
    if (open >= 0) {
      this.inCall = true;
      this.held = '';
      return buf.slice(0, open);
    }
    let keep = 0;
    for (let k = Math.min(OPEN.length - 1, buf.length); k > 0; k--) {
      if (buf.endsWith(OPEN.slice(0, k))) {
        keep = k;
        break;
      }
    }
    this.held = buf.slice(buf.length - keep);
    return buf.slice(0, buf.length - keep);
  }

  /** At the end: the held-back text (when no call followed) and the calls. */
  finish(tools: readonly ToolDef[]): { text: string; calls: ToolCall[] } {
    if (!this.inCall) {
      const t = this.held;
      this.held = '';
      return { text: t, calls: [] };
    }
    const { calls } = extractToolCalls(this.all, tools);
    // Blocks that did not parse are text after all.
    const firstOpen = this.all.indexOf(OPEN);
    const rest = calls.length > 0 ? extractToolCalls(this.all.slice(firstOpen), tools).content : this.all.slice(firstOpen);
    return { text: rest, calls };
  }
}
