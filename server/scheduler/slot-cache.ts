// Prompt (prefix) cache: a slot keeps its KV cache after its request ends, and this
// module remembers which tokens it holds. A new sequence takes the free slot whose
// tokens share the longest prefix with its prompt and skips prefilling that prefix
// (the context only has to forget the positions after it: Context.truncate). Ties
// (no match anywhere, say) go to the least recently used slot, so the caches most
// likely to be asked for again survive longest. A match shorter than MIN_MATCH (a BOS,
// a template's first line) does not count when choosing: it would send every new
// prompt to the same slot and wipe a long cache to save a few tokens; it is still
// reused in whichever slot is chosen.

const MIN_MATCH = 8;

export interface SlotChoice {
  slot: number;
  /** Prompt tokens already in the slot's cache (always < prompt length: the last one must be decoded for logits). */
  reuse: number;
}

export class SlotCache {
  private readonly tokens: number[][];
  private readonly lastUsed: number[];
  private clock = 0;

  constructor(nSlots: number) {
    this.tokens = Array.from({ length: nSlots }, () => []);
    this.lastUsed = new Array<number>(nSlots).fill(0);
  }

  /** Tokens the slot's cache holds, in position order. */
  held(slot: number): readonly number[] {
    return this.tokens[slot];
  }

  /**
   * Picks a slot from `free` (removing it) for `prompt`. reuseOk false: the prompt is
   * prefilled from scratch (cache_prompt false, or prompt scoring, which needs every
   * position's logits). The caller truncates the context to `reuse`.
   */
  take(free: number[], prompt: readonly number[], reuseOk: boolean): SlotChoice {
    let bestAt = -1;
    let bestLen = -1;
    // From the end: with equal scores the slot the free list would have popped wins.
    for (let i = free.length - 1; i >= 0; i--) {
      const slot = free[i];
      const lcp = reuseOk ? commonPrefix(this.tokens[slot], prompt) : 0;
      const len = lcp >= MIN_MATCH ? lcp : 0;
      if (len > bestLen || (len === bestLen && this.lastUsed[slot] < this.lastUsed[free[bestAt]])) {
        bestAt = i;
        bestLen = len;
      }
    }
    const slot = free[bestAt];
    free.splice(bestAt, 1);
    const reuse = Math.min(reuseOk ? commonPrefix(this.tokens[slot], prompt) : 0, prompt.length - 1);
    this.tokens[slot].length = Math.max(0, reuse);
    this.lastUsed[slot] = ++this.clock;
    return { slot, reuse: Math.max(0, reuse) };
  }

  /** Tokens just decoded into the slot. */
  append(slot: number, toks: ArrayLike<number>): void {
    const t = this.tokens[slot];
    for (let i = 0; i < toks.length; i++) t.push(toks[i]);
  }

  /** The slot's cache is gone (decode failure: what the context holds is unknown). */
  clear(slot: number): void {
    this.tokens[slot].length = 0;
  }
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
