// Logprob shapes: chat's {content: [{token, logprob, bytes, top_logprobs}]} and the
// legacy completions' {tokens, token_logprobs, top_logprobs, text_offset}.

import type { RuntimeTokenizer } from '../scheduler/runtime.js';
import type { Picked, TopLogprob } from '../scheduler/types.js';

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

function tokenInfo(tok: RuntimeTokenizer, id: number): { token: string; bytes: number[] } {
  const b = tok.tokenBytes(id);
  return { token: Buffer.from(b).toString('utf8'), bytes: Array.from(b) };
}

export function chatLogprobs(tok: RuntimeTokenizer, picks: readonly Picked[]): ChatTokenLogprob[] {
  return picks.map((p) => ({
    ...tokenInfo(tok, p.token),
    logprob: p.logprob ?? 0,
    top_logprobs: (p.top ?? []).map((t) => ({ ...tokenInfo(tok, t.token), logprob: t.logprob })),
  }));
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

/** One listed token: logprob null for a prompt's first token (nothing predicts it) or an unscored prompt. */
export interface LogprobEntry {
  token: number;
  logprob: number | null;
  top: readonly TopLogprob[] | null;
  /** Where the token's text starts in the choice's returned `text`. */
  offset: number;
}

/**
 * The legacy shape. top_logprobs always holds the listed token itself, as OpenAI's does
 * (so `logprobs: 0` gives one entry per token, not `{}`).
 */
export function completionLogprobs(tok: RuntimeTokenizer, entries: readonly LogprobEntry[]): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  for (const e of entries) {
    const s = tokenInfo(tok, e.token).token;
    out.tokens.push(s);
    out.token_logprobs.push(e.logprob);
    let top: Record<string, number> | null = null;
    if (e.logprob !== null) {
      top = {};
      // Keyed by text: where several tokens share one (every lone lead byte reads U+FFFD),
      // the most likely keeps it (top comes best first), the listed token included.
      for (const t of e.top ?? []) {
        const k = tokenInfo(tok, t.token).token;
        if (!(k in top)) top[k] = t.logprob;
      }
      if (!(s in top)) top[s] = e.logprob;
    }
    out.top_logprobs.push(top);
    out.text_offset.push(e.offset);
  }
  return out;
}

/** Generated picks as entries; offsets are relative to the generated text, `base` is what precedes it. */
export function pickEntries(picks: readonly Picked[], offsets: readonly number[], base: number): LogprobEntry[] {
  return picks.map((p, i) => ({ token: p.token, logprob: p.logprob ?? null, top: p.top ?? null, offset: base + offsets[i] }));
}

/**
 * Where each prompt token's text starts in the prompt's decoded text (the echo): the
 * decoder drops the first token's leading space as detokenising does, so offsets index
 * the echoed text rather than the tokens' raw pieces laid end to end.
 */
export function promptOffsets(tok: RuntimeTokenizer, tokens: readonly number[]): number[] {
  const d = tok.stream(false);
  const out: number[] = [];
  let at = 0;
  for (const t of tokens) {
    out.push(at);
    at += d.push(t).length;
  }
  return out;
}
