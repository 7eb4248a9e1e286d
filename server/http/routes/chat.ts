// POST /v1/chat/completions: messages -> chat template -> tokens -> Generation, shaped
// as OpenAI's chat.completion / chat.completion.chunk objects.

import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.js';
import { parseChatRequest } from '../validate.js';
import { checkModel, requireReady } from '../state.js';
import { drive, type Shaper, type Usage } from '../drive.js';
import { chatLogprobs } from '../logprobs.js';
import { ChatTemplateError, type RenderOptions } from '../../chat/template.js';
import type { ModelRuntime } from '../../scheduler/runtime.js';

/** Renders the conversation and tokenises it; a BOS the template wrote as text is folded into the BOS token. */
export function chatPromptTokens(runtime: ModelRuntime, messages: Parameters<ModelRuntime['template']['render']>[0], opts: RenderOptions = {}): number[] {
  let text: string;
  try {
    text = runtime.template.render(messages, opts);
  } catch (err) {
    if (err instanceof ChatTemplateError) throw new ApiError(400, err.message, { param: 'messages', code: 'invalid_messages' });
    throw err;
  }
  const tok = runtime.tokenizer;
  let addBos = tok.addBos;
  if (tok.bosText && text.startsWith(tok.bosText)) {
    text = text.slice(tok.bosText.length);
    addBos = true;
  }
  return tok.encode(text, addBos, true);
}

export async function chatRoutes(app: FastifyInstance): Promise<void> {
  app.post('/v1/chat/completions', async (req, reply) => {
    const ready = requireReady(app.relu);
    const { runtime } = ready;
    const r = parseChatRequest(req.body, { maxN: runtime.nSeq, nVocab: runtime.tokenizer.nVocab, maxPrompts: 1 });
    checkModel(r.model, runtime);
    const prompt = chatPromptTokens(runtime, r.messages, { continueFinal: r.continueFinal, addGenerationPrompt: r.addGenerationPrompt });
    const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = runtime.id;
    const withUsage = r.stream && r.includeUsage ? { usage: null } : {};
    const chunk = (choices: unknown[]) => ({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: null, choices, ...withUsage });
    const tok = runtime.tokenizer;
    const shaper: Shaper = {
      opening: (choices) => choices.map((c) => chunk([{ index: c.index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }])),
      delta: (c, text, picks) => chunk([{ index: c.index, delta: { content: text }, logprobs: r.logprobs ? { content: chatLogprobs(tok, picks), refusal: null } : null, finish_reason: null }]),
      end: (c) => chunk([{ index: c.index, delta: {}, logprobs: null, finish_reason: c.finishReason }]),
      usage: (u: Usage) => ({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: null, choices: [], usage: u }),
      full: (gen, u) => ({
        id, object: 'chat.completion', created, model, system_fingerprint: null,
        choices: gen.choices.map((c) => ({
          index: c.index,
          message: { role: 'assistant', content: c.text, refusal: null },
          logprobs: r.logprobs ? { content: chatLogprobs(tok, c.picks), refusal: null } : null,
          finish_reason: c.finishReason,
        })),
        usage: u,
      }),
    };
    return drive(req, reply, app.relu, ready, {
      prompts: [prompt], n: r.n, maxTokens: r.maxTokens, stop: r.stop, settings: r.sampling,
      topLogprobs: r.logprobs ? r.topLogprobs : null, cachePrompt: r.cachePrompt, grammar: r.grammar, promptParam: 'messages',
      // A prefilled reply continues the assistant's text, so its first token keeps its space.
      continuation: r.continueFinal,
    }, shaper, { stream: r.stream, includeUsage: r.includeUsage, user: r.user });
  });
}
