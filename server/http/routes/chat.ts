// POST /v1/chat/completions: messages -> chat template -> tokens -> Generation, shaped
// as OpenAI's chat.completion / chat.completion.chunk objects.

import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { parseChatRequest } from '../validate.js';
import { checkModel, requireReady } from '../state.js';
import { drive, type Shaper, type Usage } from '../drive.js';
import { chatLogprobs } from '../logprobs.js';
import type { Choice } from '../generate.js';
import { extractToolCalls, templateTools, toolGrammar, ToolStreamSplitter, type ToolCall } from '../tools.js';
import { chatPrompt } from '../prompt.js';

export async function chatRoutes(app: FastifyInstance): Promise<void> {
  app.post('/v1/chat/completions', async (req, reply) => {
    const ready = requireReady(app.relu);
    const { runtime } = ready;
    const r = parseChatRequest(req.body, { maxN: runtime.nSeq, nVocab: runtime.tokenizer.nVocab, maxPrompts: 1 });
    checkModel(r.model, runtime);
    const tools = r.tools;
    // Rendered and tokenised off the event loop, under a time budget (chat/text-worker.ts).
    const prompt = await chatPrompt(runtime, r.messages, { continueFinal: r.continueFinal, addGenerationPrompt: r.addGenerationPrompt, ...(tools ? { tools: templateTools(tools) } : {}) });
    // Replies are read for tool calls unless tool_choice is none; required / named ones are constrained to them.
    const calling = tools !== null && tools.choice.mode !== 'none';
    const grammar = tools && (tools.choice.mode === 'required' || tools.choice.mode === 'named') ? toolGrammar(tools) : r.grammar;
    const splitters = new Map<number, ToolStreamSplitter>();
    const splitter = (c: Choice) => {
      let sp = splitters.get(c.index);
      if (!sp) splitters.set(c.index, (sp = new ToolStreamSplitter()));
      return sp;
    };
    // A reply that ended on its own after calling tools ends with "tool_calls"; one cut by max_tokens stays "length".
    const finishWith = (c: Choice, calls: ToolCall[]) => (calls.length > 0 && c.finishReason === 'stop' ? 'tool_calls' : c.finishReason);
    const toolDeltas = (calls: ToolCall[]) => calls.map((t, index) => ({ index, id: t.id, type: t.type, function: t.function }));
    const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = runtime.id;
    const withUsage = r.stream && r.includeUsage ? { usage: null } : {};
    const chunk = (choices: unknown[]) => ({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: null, choices, ...withUsage });
    const tok = runtime.tokenizer;
    const shaper: Shaper = {
      opening: (choices) => choices.map((c) => chunk([{ index: c.index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }])),
      delta: (c, text, picks) => chunk([{ index: c.index, delta: { content: calling ? splitter(c).push(text) : text }, logprobs: r.logprobs ? { content: chatLogprobs(tok, picks), refusal: null } : null, finish_reason: null }]),
      end: (c) => {
        if (!calling) return chunk([{ index: c.index, delta: {}, logprobs: null, finish_reason: c.finishReason }]);
        const { text, calls } = splitter(c).finish(tools!.tools);
        const out: unknown[] = [];
        if (text) out.push(chunk([{ index: c.index, delta: { content: text }, logprobs: null, finish_reason: null }]));
        if (calls.length > 0) out.push(chunk([{ index: c.index, delta: { tool_calls: toolDeltas(calls) }, logprobs: null, finish_reason: null }]));
        out.push(chunk([{ index: c.index, delta: {}, logprobs: null, finish_reason: finishWith(c, calls) }]));
        return out;
      },
      usage: (u: Usage) => ({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: null, choices: [], usage: u }),
      full: (gen, u) => ({
        id, object: 'chat.completion', created, model, system_fingerprint: null,
        choices: gen.choices.map((c) => {
          const { content, calls } = calling ? extractToolCalls(c.text, tools!.tools) : { content: c.text, calls: [] };
          return {
            index: c.index,
            message: { role: 'assistant', content: calls.length > 0 && content === '' ? null : content, refusal: null, ...(calls.length > 0 ? { tool_calls: calls } : {}) },
            logprobs: r.logprobs ? { content: chatLogprobs(tok, c.picks), refusal: null } : null,
            finish_reason: finishWith(c, calls),
          };
        }),
        usage: u,
      }),
    };
    return drive(req, reply, app.relu, ready, {
      prompts: [prompt], n: r.n, maxTokens: r.maxTokens, stop: r.stop, settings: r.sampling,
      topLogprobs: r.logprobs ? r.topLogprobs : null, cachePrompt: r.cachePrompt, grammar, promptParam: 'messages',
      // A prefilled reply continues the assistant's text, so its first token keeps its space.
      continuation: r.continueFinal,
    }, shaper, { stream: r.stream, includeUsage: r.includeUsage, user: r.user });
  });
}
