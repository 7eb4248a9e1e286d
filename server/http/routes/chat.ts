// POST /v1/chat/completions: messages -> chat template -> tokens -> Generation, shaped
// as OpenAI's chat.completion / chat.completion.chunk objects.

import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { parseChatRequest } from '../validate.js';
import { checkModel, requireReady } from '../state.js';
import { drive, type Shaper, type Usage } from '../drive.js';
import { chatLogprobs } from '../logprobs.js';
import type { Choice } from '../generate.js';
import { templateTools, toolGrammar, type ToolCall } from '../tools.js';
import { ToolCallParser, type ToolEvent } from '../tool-call-parser.js';
import { detectToolFormat } from '../tool-formats.js';
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
    // The call format is the one the model's template teaches.
    const format = detectToolFormat(runtime.template.source);
    const grammar = tools && (tools.choice.mode === 'required' || tools.choice.mode === 'named') ? toolGrammar(tools, format) : r.grammar;
    const names = tools ? tools.tools.map((t) => t.name) : [];
    const parsers = new Map<number, ToolCallParser>();
    const parser = (c: Choice) => {
      let p = parsers.get(c.index);
      if (!p) parsers.set(c.index, (p = new ToolCallParser(format, names)));
      return p;
    };
    const callCount = new Map<number, number>();
    // A reply that ended on its own after calling tools ends with "tool_calls"; one cut by max_tokens stays "length".
    const finishWith = (c: Choice, calls: number) => (calls > 0 && c.finishReason === 'stop' ? 'tool_calls' : c.finishReason);
    const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = runtime.id;
    const withUsage = r.stream && r.includeUsage ? { usage: null } : {};
    const chunk = (choices: unknown[]) => ({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: null, choices, ...withUsage });
    const tok = runtime.tokenizer;
    // Streamed: text as content deltas; a call's first delta carries index, id, type, name
    // and empty arguments, later ones only index and argument pieces (the SDK's shape).
    const eventChunks = (c: Choice, events: ToolEvent[]): { index: number; delta: unknown; logprobs: unknown; finish_reason: null }[] =>
      events.map((e) => {
        let delta: unknown;
        if (e.kind === 'text') delta = { content: e.text };
        else if (e.kind === 'start') {
          callCount.set(c.index, e.index + 1);
          delta = { tool_calls: [{ index: e.index, id: e.id, type: 'function', function: { name: e.name, arguments: '' } }] };
        } else delta = { tool_calls: [{ index: e.index, function: { arguments: e.text } }] };
        return { index: c.index, delta, logprobs: null, finish_reason: null };
      });
    const shaper: Shaper = {
      opening: (choices) => choices.map((c) => chunk([{ index: c.index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }])),
      delta: (c, text, picks) => {
        const logprobs = r.logprobs ? { content: chatLogprobs(tok, picks), refusal: null } : null;
        if (!calling) return chunk([{ index: c.index, delta: { content: text }, logprobs, finish_reason: null }]);
        const out = eventChunks(c, parser(c).push(text));
        // Logprobs ride on the first chunk, or on an empty content chunk when the text went into a call.
        if (out.length === 0 && logprobs) return chunk([{ index: c.index, delta: { content: '' }, logprobs, finish_reason: null }]);
        if (out.length > 0 && logprobs) out[0].logprobs = logprobs;
        return out.map((x) => chunk([x]));
      },
      end: (c) => {
        if (!calling) return chunk([{ index: c.index, delta: {}, logprobs: null, finish_reason: c.finishReason }]);
        const out = eventChunks(c, parser(c).finish()).map((x) => chunk([x]));
        out.push(chunk([{ index: c.index, delta: {}, logprobs: null, finish_reason: finishWith(c, callCount.get(c.index) ?? 0) }]));
        return out;
      },
      usage: (u: Usage) => ({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: null, choices: [], usage: u }),
      full: (gen, u) => ({
        id, object: 'chat.completion', created, model, system_fingerprint: null,
        choices: gen.choices.map((c) => {
          const { content, calls } = calling ? readCalls(new ToolCallParser(format, names), c.text) : { content: c.text, calls: [] };
          return {
            index: c.index,
            message: { role: 'assistant', content: calls.length > 0 && content === '' ? null : content, refusal: null, ...(calls.length > 0 ? { tool_calls: calls } : {}) },
            logprobs: r.logprobs ? { content: chatLogprobs(tok, c.picks), refusal: null } : null,
            finish_reason: finishWith(c, calls.length),
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

/** A whole reply read by the parser: content (trimmed around calls) and the calls. */
function readCalls(p: ToolCallParser, text: string): { content: string; calls: ToolCall[] } {
  const calls: ToolCall[] = [];
  let content = '';
  for (const e of [...p.push(text), ...p.finish()]) {
    if (e.kind === 'text') content += e.text;
    else if (e.kind === 'start') calls.push({ id: e.id, type: 'function', function: { name: e.name, arguments: '' } });
    else calls[e.index].function.arguments += e.text;
  }
  return { content: calls.length > 0 ? content.trim() : content, calls };
}
