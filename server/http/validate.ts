// Request validation for the OpenAI endpoints. Hand-written rather than JSON Schema so
// that every refusal is a 400 naming the exact field (`messages[2].content[0].type`)
// the way the client wrote it. Output is a typed request the rest of the server uses;
// no raw JSON goes past this module.

import { invalidField, ApiError } from './errors.js';
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
}

export type ChatRole = 'system' | 'user' | 'assistant';
export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatRequest extends CommonRequest {
  messages: ChatMessage[];
  logprobs: boolean;
  topLogprobs: number;
}

export type PromptInput = { kind: 'text'; text: string } | { kind: 'tokens'; tokens: number[] };

export interface CompletionRequest extends CommonRequest {
  prompts: PromptInput[];
  echo: boolean;
  /** Number of top alternatives per token; null when logprobs were not asked for. */
  logprobs: number | null;
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

function parseCommon(body: Obj, limits: ValidationLimits): CommonRequest {
  const model = body.model;
  if (model !== undefined && model !== null && typeof model !== 'string') {
    throw invalidField('model', `'model' must be a string, got ${describe(model)}.`, 'invalid_type');
  }
  // max_completion_tokens is the newer name; when both are given the newer wins.
  let maxTokens: number | undefined;
  for (const key of ['max_tokens', 'max_completion_tokens']) {
    const v = body[key];
    if (v === undefined || v === null) continue;
    maxTokens = optNumber(body, key, 0, 1, Number.MAX_SAFE_INTEGER, { integer: true });
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
      repetitionPenalty: optNumber(body, 'repetition_penalty', 1, 0, 10, { minExclusive: true }),
      seed,
      logitBias: parseLogitBias(body, limits.nVocab),
    },
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
    if (role !== 'system' && role !== 'user' && role !== 'assistant') {
      throw invalidField(`${at}.role`, `'${at}.role' must be one of 'system', 'developer', 'user', 'assistant', got ${excerpt(m.role)}.`);
    }
    if (m.content === undefined) throw invalidField(`${at}.content`, `'${at}.content' is required.`, 'missing_required_parameter');
    return { role, content: parseContent(m.content, `${at}.content`) };
  });
  const common = parseCommon(body, limits);
  const logprobs = optBool(body, 'logprobs', false);
  const topLogprobs = optNumber(body, 'top_logprobs', 0, 0, 20, { integer: true });
  if (topLogprobs > 0 && !logprobs) {
    throw invalidField('top_logprobs', `'top_logprobs' requires 'logprobs' to be true.`);
  }
  return { ...common, messages, logprobs, topLogprobs };
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
  const prompts = parsePrompts(body.prompt, limits);
  const common = parseCommon(body, limits);
  if (prompts.length * common.n > limits.maxN) {
    throw invalidField('n', `${prompts.length} prompts x n=${common.n} asks for ${prompts.length * common.n} sequences; at most ${limits.maxN} fit at once.`);
  }
  const lp = body.logprobs;
  let logprobs: number | null = null;
  if (lp !== undefined && lp !== null && lp !== false) {
    logprobs = lp === true ? 0 : optNumber(body, 'logprobs', 0, 0, 20, { integer: true });
  }
  return { ...common, prompts, echo: optBool(body, 'echo', false), logprobs };
}
