// Every request field either does what it says or is refused with a 400 naming it;
// nothing is dropped silently (a client that asks for JSON output and gets free text
// has been lied to). These tables list the fields each endpoint reads; validate.ts
// parses the honoured ones, anything else in a body is refused here. test/http/
// fields.test.ts walks the tables, so a field added here without a parser (or a parser
// without an entry) fails it.

import { invalidField } from './errors.js';

/** Why a known field is refused (the feature is not built). */
export interface Refusal {
  field: string;
  feature: string;
}

const COMMON = [
  'model', 'max_tokens', 'max_completion_tokens', 'stop', 'n', 'stream', 'stream_options', 'user', 'seed',
  'temperature', 'top_p', 'top_k', 'min_p', 'presence_penalty', 'frequency_penalty', 'repetition_penalty',
  // llama.cpp's name for repetition_penalty.
  'repeat_penalty', 'logit_bias', 'logprobs',
  // llama.cpp: false starts the prompt from scratch instead of reusing a slot's cached prefix.
  'cache_prompt',
  // text, json_object, json_schema: structured output (structured.ts).
  'response_format',
] as const;

/** Fields /v1/chat/completions reads. */
export const CHAT_FIELDS: readonly string[] = [
  ...COMMON, 'messages', 'top_logprobs',
  // Assistant prefill: vLLM's names; llama.cpp continues a final assistant message by default.
  'continue_final_message', 'add_generation_prompt',
  // Function calling (tools.ts).
  'tools', 'tool_choice', 'parallel_tool_calls',
];

/** Fields /v1/completions reads. */
export const COMPLETION_FIELDS: readonly string[] = [
  ...COMMON, 'prompt', 'echo',
  // Honoured when it equals n (the only best-of-n that needs no extra sequences); other values are refused.
  'best_of',
  // Infill: refused unless empty (no model here has fill-in-the-middle tokens).
  'suffix',
  // llama.cpp's structured output: a JSON schema, or GBNF text.
  'json_schema', 'grammar',
];

/** Known fields whose feature is not built: a 400 naming the feature, not silence. */
export const CHAT_REFUSED: readonly Refusal[] = [
  { field: 'functions', feature: 'function calling (the deprecated functions field)' },
  { field: 'function_call', feature: 'function calling (the deprecated function_call field)' },
];

export const COMPLETION_REFUSED: readonly Refusal[] = [];

/**
 * Refuses fields the endpoint does not read. A null value means "the default" and is
 * let through (the SDKs send null for unset optional fields in some languages).
 */
export function checkFields(body: Record<string, unknown>, known: readonly string[], refused: readonly Refusal[]): void {
  for (const [key, v] of Object.entries(body)) {
    if (v === null || v === undefined) continue;
    const r = refused.find((x) => x.field === key);
    if (r) throw invalidField(key, `'${key}' is not supported: this server does not implement ${r.feature}.`, 'unsupported_parameter');
    if (!known.includes(key)) throw invalidField(key, `Unknown or unsupported parameter '${key}'; this server does not read it.`, 'unsupported_parameter');
  }
}
