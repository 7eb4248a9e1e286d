// POST /v1/chat/completions: messages -> chat template -> tokens -> Generation, shaped
// as OpenAI's chat.completion / chat.completion.chunk objects.

import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { parseChatRequest } from '../validate.js';
import { checkModel, requireReady } from '../state.js';
import { drive, type Shaper, type Usage } from '../drive.js';
import { chatLogprobs } from '../logprobs.js';
import { chatPrompt } from '../prompt.js';

export async function chatRoutes(app: FastifyInstance): Promise<void> {
  app.post('/v1/chat/completions', async (req, reply) => {
    const ready = requireReady(app.relu);
    const { runtime } = ready;
    const r = parseChatRequest(req.body, { maxN: runtime.nSeq, nVocab: runtime.tokenizer.nVocab, maxPrompts: 1 });
    checkModel(r.model, runtime);
    // Rendered and tokenised off the event loop, under a time budget (chat/text-worker.ts).
    const prompt = await chatPrompt(runtime, r.messages);
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
      topLogprobs: r.logprobs ? r.topLogprobs : null, continuation: false, promptParam: 'messages',
    }, shaper, { stream: r.stream, includeUsage: r.includeUsage, user: r.user });
  });
}
