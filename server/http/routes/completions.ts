// POST /v1/completions (legacy text completions): prompt strings or token ids, echo,
// integer logprobs; shaped as OpenAI's text_completion objects.

import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { parseCompletionRequest } from '../validate.js';
import { checkModel, requireReady } from '../state.js';
import { drive, type Shaper, type Usage } from '../drive.js';
import { completionLogprobs } from '../logprobs.js';
import type { Choice } from '../generate.js';
import { textPrompt } from '../prompt.js';

const MAX_PROMPTS = 16;

export async function completionRoutes(app: FastifyInstance): Promise<void> {
  app.post('/v1/completions', async (req, reply) => {
    const ready = requireReady(app.relu);
    const { runtime } = ready;
    const tok = runtime.tokenizer;
    const r = parseCompletionRequest(req.body, { maxN: runtime.nSeq, nVocab: tok.nVocab, maxPrompts: Math.min(MAX_PROMPTS, runtime.nSeq) });
    checkModel(r.model, runtime);
    const prompts = await Promise.all(r.prompts.map((p, i) => (p.kind === 'text' ? textPrompt(runtime, p.text, tok.addBos, r.prompts.length > 1 ? `prompt[${i}]` : 'prompt', runtime.nCtx) : p.tokens)));
    // What echo shows: the prompt as the client wrote it (text), or decoded (token ids).
    const promptText = r.prompts.map((p, i) => (p.kind === 'text' ? p.text : tok.decode(prompts[i])));
    const id = `cmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = runtime.id;
    const withUsage = r.stream && r.includeUsage ? { usage: null } : {};
    const chunk = (choices: unknown[]) => ({ id, object: 'text_completion', created, model, system_fingerprint: null, choices, ...withUsage });
    const echoOf = (c: Choice) => (r.echo ? promptText[c.promptIndex] : '');
    // Streamed logprobs offsets continue from what was sent before.
    const sentChars = new Map<number, number>();
    const shaper: Shaper = {
      opening: (choices) =>
        r.echo
          ? choices.map((c) => {
              sentChars.set(c.index, echoOf(c).length);
              return chunk([{ text: echoOf(c), index: c.index, logprobs: r.logprobs !== null ? completionLogprobs(tok, [], 0, prompts[c.promptIndex]) : null, finish_reason: null }]);
            })
          : [],
      delta: (c, text, picks) => {
        const at = sentChars.get(c.index) ?? 0;
        sentChars.set(c.index, at + text.length);
        return chunk([{ text, index: c.index, logprobs: r.logprobs !== null ? completionLogprobs(tok, picks, at) : null, finish_reason: null }]);
      },
      end: (c) => chunk([{ text: '', index: c.index, logprobs: null, finish_reason: c.finishReason }]),
      usage: (u: Usage) => ({ id, object: 'text_completion', created, model, system_fingerprint: null, choices: [], usage: u }),
      full: (gen, u) => ({
        id, object: 'text_completion', created, model, system_fingerprint: null,
        choices: gen.choices.map((c) => ({
          text: echoOf(c) + c.text,
          index: c.index,
          logprobs: r.logprobs !== null ? completionLogprobs(tok, c.picks, 0, r.echo ? prompts[c.promptIndex] : []) : null,
          finish_reason: c.finishReason,
        })),
        usage: u,
      }),
    };
    return drive(req, reply, app.relu, ready, {
      prompts, n: r.n, maxTokens: r.maxTokens, stop: r.stop, settings: r.sampling,
      topLogprobs: r.logprobs, continuation: true, promptParam: 'prompt',
    }, shaper, { stream: r.stream, includeUsage: r.includeUsage, user: r.user });
  });
}
