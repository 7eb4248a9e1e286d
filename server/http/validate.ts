// Request validation for the OpenAI endpoints. Hand-written rather than JSON Schema so
// that every refusal is a 400 naming the exact field (`messages[2].content[0].type`)
// the way the client wrote it. Output is a typed request the rest of the server uses;
// no raw JSON goes past this module.

import { invalidField, ApiError } from './errors.js';
import { parseStructured } from './structured.js';
import { parseTools, type ToolSettings } from './tools.js';
import { checkFields, CHAT_FIELDS, CHAT_REFUSED, COMPLETION_FIELDS, COMPLETION_REFUSED } from './fields.js';
import { excerpt, shortKey } from './excerpt.js';

export interface SamplingSettings {
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  presencePenalty: number;
  frequencyPenalty: number;
  repetitionPenalty: number;
  seed: number | undefined;
  /** token id -> additive bias */
  logitBias: Map<number, number>;
}

export interface CommonRequest {
  model: string | undefined;
  /** undefined: as many as fit in the context. */
  maxTokens: number | undefined;
  stop: string[];
  n: number;
  stream: boolean;
  includeUsage: boolean;
  user: string | undefined;
  sampling: SamplingSettings;
  /** Reuse a slot's cached prompt prefix (llama.cpp's cache_prompt, default true). */
  cachePrompt: boolean;
  /** GBNF the output must follow (structured output), or null. */
  grammar: string | null;
}

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';
export interface ChatMessage {
  role: ChatRole;
  /** '' for an assistant message that only calls tools (content null). */
  content: string;
  /** Assistant: the tools it called (arguments as the JSON text the client sent). */
  toolCalls?: { id: string; name: string; arguments: string }[];
  /** Tool: the call this message answers. */
  toolCallId?: string;
  /** The participant's name: given to the chat template as `name` (the template decides its use). */
  name?: string;
}

/** Keys a message may carry (null counts as absent); any other is refused, never dropped. */
const MESSAGE_KEYS: Record<string, readonly string[]> = {
  system: ['role', 'content', 'name'],
  user: ['role', 'content', 'name'],
  assistant: ['role', 'content', 'name', 'tool_calls'],
  tool: ['role', 'content', 'tool_call_id'],
};

export interface ChatRequest extends CommonRequest {
  messages: ChatMessage[];
  logprobs: boolean;
  topLogprobs: number;
  /** Continue the final assistant message instead of opening a new turn (prefill). */
  continueFinal: boolean;
  /** Render the template's generation prompt (vLLM's add_generation_prompt). */
  addGenerationPrompt: boolean;
  /** tools / tool_choice / parallel_tool_calls; null without tools. */
  tools: ToolSettings | null;
}

export type PromptInput = { kind: 'text'; text: string } | { kind: 'tokens'; tokens: number[] };

export interface CompletionRequest extends CommonRequest {
  prompts: PromptInput[];
  echo: boolean;
  /** Number of top alternatives per token; null when logprobs were not asked for. */
  logprobs: number | null;
  /** Candidates generated per prompt (>= n); the n with the highest cumulative logprob are returned. */
  bestOf: number;
}

export interface ValidationLimits {
  /** Largest n (each choice takes a slot). */
  maxN: number;
  /** Vocabulary size, to check token ids in prompts and logit_bias. */
  nVocab: number;
  /** Most prompts one /v1/completions request may carry. */
  maxPrompts: number;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

function optNumber(body: Obj, key: string, dflt: number, min: number, max: number, opts: { integer?: boolean; minExclusive?: boolean } = {}): number {
  const v = body[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw invalidField(key, `'${key}' must be a number, got ${describe(v)}.`, 'invalid_type');
  }
  if (opts.integer && !Number.isInteger(v)) throw invalidField(key, `'${key}' must be an integer, got ${v}.`);
  const belowMin = opts.minExclusive ? v <= min : v < min;
  if (belowMin || v > max) {
    const lo = opts.minExclusive ? `greater than ${min}` : `at least ${min}`;
    throw invalidField(key, `'${key}' must be ${lo} and at most ${max}, got ${v}.`);
  }
  return v;
}

function optBool(body: Obj, key: string, dflt: boolean): boolean {
  const v = body[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw invalidField(key, `'${key}' must be a boolean, got ${describe(v)}.`, 'invalid_type');
  return v;
}

function parseStop(body: Obj): string[] {
  const v = body.stop;
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list)) throw invalidField('stop', `'stop' must be a string or an array of strings, got ${describe(v)}.`, 'invalid_type');
  if (list.length > 4) throw invalidField('stop', `'stop' may hold at most 4 strings, got ${list.length}.`);
  list.forEach((s, i) => {
    if (typeof s !== 'string') throw invalidField(`stop[${i}]`, `'stop[${i}]' must be a string, got ${describe(s)}.`, 'invalid_type');
    if (s.length === 0) throw invalidField(`stop[${i}]`, `'stop[${i}]' must not be empty.`);
  });
  return list as string[];
}

function parseLogitBias(body: Obj, nVocab: number): Map<number, number> {
  const out = new Map<number, number>();
  const v = body.logit_bias;
  if (v === undefined || v === null) return out;
  if (!isObj(v)) throw invalidField('logit_bias', `'logit_bias' must be an object mapping token ids to biases, got ${describe(v)}.`, 'invalid_type');
  for (const [key, bias] of Object.entries(v)) {
    const id = Number(key);
    const k = shortKey(key);
    if (!/^\d+$/.test(key) || !Number.isSafeInteger(id) || id >= nVocab) {
      throw invalidField(`logit_bias.${k}`, `'logit_bias' key '${k}' is not a token id in [0, ${nVocab}).`);
    }
    if (typeof bias !== 'number' || !Number.isFinite(bias) || bias < -100 || bias > 100) {
      throw invalidField(`logit_bias.${k}`, `'logit_bias.${k}' must be a number in [-100, 100], got ${excerpt(bias)}.`);
    }
    out.set(id, bias);
  }
  return out;
}

/** repetition_penalty, or llama.cpp's repeat_penalty; both given must agree. */
function parseRepetitionPenalty(body: Obj): number {
  const a = optNumber(body, 'repetition_penalty', 1, 0, 10, { minExclusive: true });
  const b = optNumber(body, 'repeat_penalty', 1, 0, 10, { minExclusive: true });
  const hasA = body.repetition_penalty !== undefined && body.repetition_penalty !== null;
  const hasB = body.repeat_penalty !== undefined && body.repeat_penalty !== null;
  if (hasA && hasB && a !== b) throw invalidField('repeat_penalty', `'repeat_penalty' (${b}) and 'repetition_penalty' (${a}) name the same setting; give one.`);
  return hasB ? b : a;
}

function parseCommon(body: Obj, limits: ValidationLimits, minMaxTokens = 1, completions = false): CommonRequest {
  const model = body.model;
  if (model !== undefined && model !== null && typeof model !== 'string') {
    throw invalidField('model', `'model' must be a string, got ${describe(model)}.`, 'invalid_type');
  }
  // max_completion_tokens is the newer name; when both are given the newer wins.
  let maxTokens: number | undefined;
  for (const key of ['max_tokens', 'max_completion_tokens']) {
    const v = body[key];
    if (v === undefined || v === null) continue;
    maxTokens = optNumber(body, key, 0, minMaxTokens, Number.MAX_SAFE_INTEGER, { integer: true });
  }
  const stream = optBool(body, 'stream', false);
  let includeUsage = false;
  const so = body.stream_options;
  if (so !== undefined && so !== null) {
    if (!isObj(so)) throw invalidField('stream_options', `'stream_options' must be an object, got ${describe(so)}.`, 'invalid_type');
    if (!stream) throw invalidField('stream_options', `'stream_options' is only allowed when 'stream' is true.`);
    const iu = so.include_usage;
    if (iu !== undefined && iu !== null && typeof iu !== 'boolean') {
      throw invalidField('stream_options.include_usage', `'stream_options.include_usage' must be a boolean, got ${describe(iu)}.`, 'invalid_type');
    }
    includeUsage = iu === true;
  }
  const user = body.user;
  if (user !== undefined && user !== null && typeof user !== 'string') {
    throw invalidField('user', `'user' must be a string, got ${describe(user)}.`, 'invalid_type');
  }
  const seedRaw = body.seed;
  let seed: number | undefined;
  if (seedRaw !== undefined && seedRaw !== null) {
    seed = optNumber(body, 'seed', 0, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, { integer: true });
  }
  return {
    model: typeof model === 'string' ? model : undefined,
    maxTokens,
    stop: parseStop(body),
    n: optNumber(body, 'n', 1, 1, limits.maxN, { integer: true }),
    stream,
    includeUsage,
    user: typeof user === 'string' ? user : undefined,
    sampling: {
      temperature: optNumber(body, 'temperature', 1, 0, 2),
      topP: optNumber(body, 'top_p', 1, 0, 1, { minExclusive: true }),
      topK: optNumber(body, 'top_k', 0, 0, limits.nVocab, { integer: true }),
      minP: optNumber(body, 'min_p', 0, 0, 1),
      presencePenalty: optNumber(body, 'presence_penalty', 0, -2, 2),
      frequencyPenalty: optNumber(body, 'frequency_penalty', 0, -2, 2),
      repetitionPenalty: parseRepetitionPenalty(body),
      seed,
      logitBias: parseLogitBias(body, limits.nVocab),
    },
    cachePrompt: optBool(body, 'cache_prompt', true),
    grammar: parseStructured(body, completions),
  };
}

function requireBody(body: unknown): Obj {
  if (!isObj(body)) throw new ApiError(400, `The request body must be a JSON object, got ${describe(body)}.`, { code: 'invalid_json' });
  return body;
}

function parseContent(v: unknown, at: string): string {
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) throw invalidField(at, `'${at}' must be a string or an array of text parts, got ${describe(v)}.`, 'invalid_type');
  let text = '';
  v.forEach((part, j) => {
    const p = `${at}[${j}]`;
    if (!isObj(part)) throw invalidField(p, `'${p}' must be an object, got ${describe(part)}.`, 'invalid_type');
    if (part.type !== 'text') {
      throw invalidField(`${p}.type`, `'${p}.type' must be 'text' (this model reads text only), got ${excerpt(part.type)}.`);
    }
    if (typeof part.text !== 'string') throw invalidField(`${p}.text`, `'${p}.text' must be a string, got ${describe(part.text)}.`, 'invalid_type');
    text += part.text;
  });
  return text;
}

export function parseChatRequest(raw: unknown, limits: ValidationLimits): ChatRequest {
  const body = requireBody(raw);
  checkFields(body, CHAT_FIELDS, CHAT_REFUSED);
  const msgs = body.messages;
  if (msgs === undefined) throw invalidField('messages', `'messages' is required.`, 'missing_required_parameter');
  if (!Array.isArray(msgs)) throw invalidField('messages', `'messages' must be an array, got ${describe(msgs)}.`, 'invalid_type');
  if (msgs.length === 0) throw invalidField('messages', `'messages' must hold at least one message.`);
  const messages: ChatMessage[] = msgs.map((m, i) => {
    const at = `messages[${i}]`;
    if (!isObj(m)) throw invalidField(at, `'${at}' must be an object, got ${describe(m)}.`, 'invalid_type');
    let role = m.role;
    // "developer" is the newer OpenAI name for system instructions.
    if (role === 'developer') role = 'system';
    if (role !== 'system' && role !== 'user' && role !== 'assistant' && role !== 'tool') {
      throw invalidField(`${at}.role`, `'${at}.role' must be one of 'system', 'developer', 'user', 'assistant', 'tool', got ${excerpt(m.role)}.`);
    }
    for (const k of Object.keys(m)) {
      if (m[k] === null || m[k] === undefined || MESSAGE_KEYS[role].includes(k)) continue;
      throw new ApiError(400, `'${at}.${shortKey(k)}' is not supported on a '${role}' message (supported: ${MESSAGE_KEYS[role].join(', ')}).`, { param: `${at}.${shortKey(k)}`, code: 'unsupported_parameter' });
    }
    if (m.name !== undefined && m.name !== null && typeof m.name !== 'string') {
      throw invalidField(`${at}.name`, `'${at}.name' must be a string, got ${describe(m.name)}.`, 'invalid_type');
    }
    const name = typeof m.name === 'string' ? m.name : undefined;
    const toolCalls = role === 'assistant' ? parseToolCallsMessage(m.tool_calls, `${at}.tool_calls`) : undefined;
    // An assistant turn that only calls tools has content null.
    if (toolCalls && (m.content === null || m.content === undefined)) return { role, content: '', toolCalls, ...(name !== undefined ? { name } : {}) };
    if (m.content === undefined) throw invalidField(`${at}.content`, `'${at}.content' is required.`, 'missing_required_parameter');
    const msg: ChatMessage = { role, content: parseContent(m.content, `${at}.content`) };
    if (toolCalls) msg.toolCalls = toolCalls;
    if (name !== undefined) msg.name = name;
    if (role === 'tool') {
      if (typeof m.tool_call_id !== 'string') throw invalidField(`${at}.tool_call_id`, `'${at}.tool_call_id' is required for a tool message.`, 'missing_required_parameter');
      msg.toolCallId = m.tool_call_id;
    }
    return msg;
  });
  const common = parseCommon(body, limits);
  const logprobs = optBool(body, 'logprobs', false);
  const topLogprobs = optNumber(body, 'top_logprobs', 0, 0, 20, { integer: true });
  if (topLogprobs > 0 && !logprobs) {
    throw invalidField('top_logprobs', `'top_logprobs' requires 'logprobs' to be true.`);
  }
  const continueFinal = optBool(body, 'continue_final_message', false);
  const addGenerationPrompt = optBool(body, 'add_generation_prompt', !continueFinal);
  const last = messages[messages.length - 1];
  if (continueFinal && last.role !== 'assistant') {
    throw invalidField('continue_final_message', `'continue_final_message' needs the last message to be from the assistant, got '${last.role}'.`);
  }
  if (continueFinal && addGenerationPrompt) {
    throw invalidField('add_generation_prompt', `'continue_final_message' and 'add_generation_prompt' cannot both be true.`);
  }
  // llama.cpp's behaviour: a conversation ending with an assistant message is continued
  // (unless the client explicitly asks for a generation prompt after it).
  const prefill = continueFinal || (last.role === 'assistant' && body.add_generation_prompt !== true);
  const tools = parseTools(body);
  if (tools && common.grammar && (tools.choice.mode === 'required' || tools.choice.mode === 'named')) {
    throw invalidField('tool_choice', `A required or named 'tool_choice' sets the output's grammar; it cannot be combined with a structured 'response_format'.`);
  }
  return { ...common, messages, logprobs, topLogprobs, continueFinal: prefill, addGenerationPrompt: prefill ? false : addGenerationPrompt, tools };
}

/** An assistant message's tool_calls (undefined when absent). */
function parseToolCallsMessage(v: unknown, at: string): ChatMessage['toolCalls'] {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalidField(at, `'${at}' must be an array.`, 'invalid_type');
  return v.map((c, j) => {
    const p = `${at}[${j}]`;
    if (!isObj(c) || !isObj(c.function)) throw invalidField(p, `'${p}' must be {"id", "type": "function", "function": {"name", "arguments"}}.`, 'invalid_type');
    const f = c.function;
    if (typeof f.name !== 'string') throw invalidField(`${p}.function.name`, `'${p}.function.name' must be a string.`, 'invalid_type');
    if (typeof f.arguments !== 'string') throw invalidField(`${p}.function.arguments`, `'${p}.function.arguments' must be a JSON string.`, 'invalid_type');
    return { id: typeof c.id === 'string' ? c.id : `call_${j}`, name: f.name, arguments: f.arguments };
  });
}

function parseTokenArray(v: unknown[], at: string, nVocab: number): number[] {
  v.forEach((t, j) => {
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t >= nVocab) {
      throw invalidField(`${at}[${j}]`, `'${at}[${j}]' must be a token id in [0, ${nVocab}), got ${excerpt(t)}.`);
    }
  });
  return v as number[];
}

function parsePrompts(v: unknown, limits: ValidationLimits): PromptInput[] {
  if (v === undefined || v === null) throw invalidField('prompt', `'prompt' is required.`, 'missing_required_parameter');
  if (typeof v === 'string') return [{ kind: 'text', text: v }];
  if (!Array.isArray(v)) throw invalidField('prompt', `'prompt' must be a string, an array of strings, or token ids, got ${describe(v)}.`, 'invalid_type');
  if (v.length === 0) throw invalidField('prompt', `'prompt' must not be an empty array.`);
  // A flat array of numbers is one tokenised prompt; otherwise each entry is a prompt.
  if (v.every((x) => typeof x === 'number')) return [{ kind: 'tokens', tokens: parseTokenArray(v, 'prompt', limits.nVocab) }];
  if (v.length > limits.maxPrompts) throw invalidField('prompt', `'prompt' may hold at most ${limits.maxPrompts} prompts, got ${v.length}.`);
  return v.map((p, i): PromptInput => {
    if (typeof p === 'string') return { kind: 'text', text: p };
    if (Array.isArray(p)) {
      if (p.length === 0) throw invalidField(`prompt[${i}]`, `'prompt[${i}]' must not be empty.`);
      return { kind: 'tokens', tokens: parseTokenArray(p, `prompt[${i}]`, limits.nVocab) };
    }
    throw invalidField(`prompt[${i}]`, `'prompt[${i}]' must be a string or an array of token ids, got ${describe(p)}.`, 'invalid_type');
  });
}

export function parseCompletionRequest(raw: unknown, limits: ValidationLimits): CompletionRequest {
  const body = requireBody(raw);
  checkFields(body, COMPLETION_FIELDS, COMPLETION_REFUSED);
  const prompts = parsePrompts(body.prompt, limits);
  // max_tokens 0 with echo and logprobs scores the prompt (lm-evaluation-harness).
  const common = parseCommon(body, limits, 0, true);
  if (prompts.length * common.n > limits.maxN) {
    throw invalidField('n', `${prompts.length} prompts x n=${common.n} asks for ${prompts.length * common.n} sequences; at most ${limits.maxN} fit at once.`);
  }
  const lp = body.logprobs;
  let logprobs: number | null = null;
  if (typeof lp === 'boolean') {
    // The legacy endpoint's logprobs is a count; a boolean is chat's field sent to the wrong place.
    throw invalidField('logprobs', `'logprobs' on /v1/completions must be an integer 0..20 (the number of top alternatives), got ${lp}.`, 'invalid_type');
  }
  if (lp !== undefined && lp !== null) logprobs = optNumber(body, 'logprobs', 0, 0, 20, { integer: true });
  const bestOf = optNumber(body, 'best_of', common.n, 1, limits.maxN, { integer: true });
  if (bestOf < common.n) throw invalidField('best_of', `'best_of' (${bestOf}) must be at least 'n' (${common.n}).`);
  if (bestOf > common.n) {
    // As OpenAI: the best candidates are known only once all are done.
    if (common.stream) throw invalidField('best_of', `'best_of' > 'n' cannot be streamed: which candidates are best is known only at the end.`);
    if (prompts.length * bestOf > limits.maxN) {
      throw invalidField('best_of', `${prompts.length} prompts x best_of=${bestOf} asks for ${prompts.length * bestOf} sequences; at most ${limits.maxN} fit at once.`);
    }
  }
  const suffix = body.suffix;
  if (suffix !== undefined && suffix !== null) {
    if (typeof suffix !== 'string') throw invalidField('suffix', `'suffix' must be a string, got ${describe(suffix)}.`, 'invalid_type');
    if (suffix.length > 0) throw invalidField('suffix', `'suffix' (fill in the middle) is not supported: this model has no infill tokens.`, 'unsupported_parameter');
  }
  return { ...common, prompts, echo: optBool(body, 'echo', false), logprobs, bestOf };
}
