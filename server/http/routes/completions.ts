// POST /v1/completions (legacy text completions): prompt strings or token ids, echo,
// integer logprobs; shaped as OpenAI's text_completion objects.

import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { parseCompletionRequest } from '../validate.js';
import { checkModel, requireReady } from '../state.js';
import { drive, type Shaper, type Usage } from '../drive.js';
import { completionLogprobs, pickEntries, promptOffsets, type LogprobEntry } from '../logprobs.js';
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
    // The echoed prompt's tokens, offsets into the echoed text.
    const echoEntries = (c: Choice): LogprobEntry[] => {
      if (!r.echo) return [];
      const toks = prompts[c.promptIndex];
      const at = promptOffsets(tok, toks);
      return toks.map((t, i) => {
        const p = c.promptPicks?.[i] ?? null;
        return { token: t, logprob: p?.logprob ?? null, top: p?.top ?? null, offset: at[i] };
      });
    };
    const echoChunk = (c: Choice) => chunk([{ text: echoOf(c), index: c.index, logprobs: r.logprobs !== null ? completionLogprobs(tok, echoEntries(c)) : null, finish_reason: null }]);
    // A scored prompt's echo waits until the prompt has been through the model.
    const scoring = r.echo && r.logprobs !== null;
    const echoPending = new Set<number>();
    const withEcho = (c: Choice, next: unknown): unknown => {
      if (!echoPending.delete(c.index)) return next;
      return [echoChunk(c), next];
    };
    const shaper: Shaper = {
      opening: (choices) => {
        if (!r.echo) return [];
        if (scoring) {
          for (const c of choices) echoPending.add(c.index);
          return [];
        }
        return choices.map(echoChunk);
      },
      // Offsets index the choice's whole text (echo included), streamed or not.
      delta: (c, text, picks, offsets) =>
        withEcho(c, chunk([{ text, index: c.index, logprobs: r.logprobs !== null ? completionLogprobs(tok, pickEntries(picks, offsets, echoOf(c).length)) : null, finish_reason: null }])),
      end: (c) => withEcho(c, chunk([{ text: '', index: c.index, logprobs: null, finish_reason: c.finishReason }])),
      usage: (u: Usage) => ({ id, object: 'text_completion', created, model, system_fingerprint: null, choices: [], usage: u }),
      full: (gen, u) => ({
        id, object: 'text_completion', created, model, system_fingerprint: null,
        choices: best(gen.choices, r.n, r.bestOf).map(({ c, index }) => ({
          text: echoOf(c) + c.text,
          index,
          logprobs: r.logprobs !== null ? completionLogprobs(tok, [...echoEntries(c), ...pickEntries(c.picks, c.offsets, echoOf(c).length)]) : null,
          finish_reason: c.finishReason,
        })),
        usage: u,
      }),
    };
    // best_of > n ranks candidates by their tokens' logprobs, so every pick carries one.
    const ranking = r.bestOf > r.n;
    return drive(req, reply, app.relu, ready, {
      prompts, n: r.bestOf, maxTokens: r.maxTokens, stop: r.stop, settings: r.sampling,
      topLogprobs: r.logprobs ?? (ranking ? 0 : null), continuation: true, cachePrompt: r.cachePrompt, grammar: r.grammar, promptParam: 'prompt',
      // echo + logprobs scores the prompt, as OpenAI did (lm-evaluation-harness relies on it).
      scorePrompt: r.echo && r.logprobs !== null ? r.logprobs : null,
    }, shaper, { stream: r.stream, includeUsage: r.includeUsage, user: r.user });
  });
}

/**
 * best_of: per prompt, the n of its bestOf candidates with the highest cumulative logprob
 * (over the tokens returned, so a stop string's cut counts; ties: the earlier candidate),
 * renumbered prompt-major. Usage still counts every candidate's tokens.
 */
export function best(choices: readonly Choice[], n: number, bestOf: number): { c: Choice; index: number }[] {
  if (bestOf === n) return choices.map((c) => ({ c, index: c.index }));
  const score = (c: Choice) => c.picks.reduce((a, p) => a + (p.logprob ?? 0), 0);
  const out: { c: Choice; index: number }[] = [];
  const prompts = [...new Set(choices.map((c) => c.promptIndex))].sort((a, b) => a - b);
  for (const pi of prompts) {
    const ranked = choices
      .filter((c) => c.promptIndex === pi)
      .map((c) => ({ c, s: score(c) }))
      .sort((a, b) => b.s - a.s || a.c.index - b.c.index);
    ranked.slice(0, n).forEach(({ c }, k) => out.push({ c, index: pi * n + k }));
  }
  return out;
}
