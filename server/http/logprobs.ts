// Logprob shapes: chat's {content: [{token, logprob, bytes, top_logprobs}]} and the
// legacy completions' {tokens, token_logprobs, top_logprobs, text_offset}.

import type { RuntimeTokenizer } from '../scheduler/runtime.js';
import type { Picked } from '../scheduler/types.js';

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

/**
 * `prefix`: echoed prompt tokens (no logprobs: the prompt is not scored).
 * `offset`: characters of text already before the first token.
 */
export function completionLogprobs(tok: RuntimeTokenizer, picks: readonly Picked[], offset: number, prefix: readonly number[] = []): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  const add = (id: number, lp: number | null, top: Record<string, number> | null) => {
    const s = tokenInfo(tok, id).token;
    out.tokens.push(s);
    out.token_logprobs.push(lp);
    out.top_logprobs.push(top);
    out.text_offset.push(at);
    at += s.length;
  };
  for (const id of prefix) add(id, null, null);
  for (const p of picks) {
    const top: Record<string, number> = {};
    for (const t of p.top ?? []) top[tokenInfo(tok, t.token).token] = t.logprob;
    add(p.token, p.logprob ?? null, top);
  }
  return out;
}
