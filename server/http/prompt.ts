// Prompt text -> tokens for the routes: in the runtime's text worker when it has one
// (chat/text-worker.ts; the real server), else inline (test runtimes). Either way a
// text that cannot fit the context is refused by its size before it is tokenised.

import { ApiError } from './errors.js';
import type { ChatMessage } from './validate.js';
import type { ModelRuntime } from '../scheduler/runtime.js';
import { ChatTemplateError, type RenderOptions } from '../chat/template.js';
import { TextWorkerBusyError, TextWorkerError } from '../chat/text-worker.js';
import { chatText, encodeWithin, type TokensOrBound } from '../chat/prompt-tokens.js';

function tooLong(runtime: ModelRuntime, atLeast: number, param: string): ApiError {
  return new ApiError(
    400,
    `This model's maximum context length is ${runtime.nCtx} tokens, but the prompt is at least ${atLeast} tokens (judged by its size); at least one token must be left for the reply.`,
    { param, code: 'context_length_exceeded' },
  );
}

function fromWorker(runtime: ModelRuntime, err: unknown): Error {
  if (err instanceof ChatTemplateError) return new ApiError(400, err.message, { param: 'messages', code: 'invalid_messages' });
  if (err instanceof TextWorkerBusyError) {
    return new ApiError(429, `The server is busy: ${err.message}. Retry later.`, { code: 'queue_full', headers: { 'retry-after': '1' } });
  }
  if (err instanceof TextWorkerError) {
    return err.inTemplate
      ? new ApiError(500, `The chat template (${runtime.template.origin}) could not be used: ${err.message}.`, { code: 'chat_template_failed' })
      : new ApiError(500, `The prompt could not be tokenised: ${err.message}.`, { code: 'tokenizer_failed' });
  }
  return err as Error;
}

/** Prompts that tokenised but still do not fit are refused by Generation with their exact count. */
function tokensOf(runtime: ModelRuntime, r: TokensOrBound, param: string): number[] {
  if ('atLeast' in r) throw tooLong(runtime, r.atLeast, param);
  return r.tokens;
}

/** The chat prompt: template + tokens, refused early when it cannot fit the context. */
export async function chatPrompt(runtime: ModelRuntime, messages: readonly ChatMessage[], opts: RenderOptions = {}): Promise<number[]> {
  let r: TokensOrBound;
  try {
    if (runtime.text) r = await runtime.text.chat(messages, runtime.nCtx, opts);
    else {
      const { text, addBos } = chatText(runtime.template, runtime.tokenizer, messages, opts);
      r = encodeWithin(runtime.tokenizer, text, addBos, true, runtime.nCtx);
    }
  } catch (err) {
    throw fromWorker(runtime, err);
  }
  return tokensOf(runtime, r, 'messages');
}

/** A text prompt (or /tokenize content). limit: null for no context check. */
export async function textPrompt(runtime: ModelRuntime, text: string, addBos: boolean, param: string, limit: number | null): Promise<number[]> {
  let r: TokensOrBound;
  try {
    r = runtime.text ? await runtime.text.encode(text, addBos, false, limit) : encodeWithin(runtime.tokenizer, text, addBos, false, limit);
  } catch (err) {
    throw fromWorker(runtime, err);
  }
  return tokensOf(runtime, r, param);
}
