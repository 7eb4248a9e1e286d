// Stop strings are matched on generated text, not tokens: a stop string can be split
// across several tokens (or sit inside one). The matcher holds back any tail of the
// text that could still become a stop string, so a stream never shows part of one,
// and cuts the text at the first stop string found. Pure and synchronous.

export interface StopResult {
  /** Text that is safe to show now. */
  text: string;
  /** A stop string was found; `text` ends right before it and nothing follows. */
  stopped: boolean;
}

export class StopMatcher {
  private pending = '';
  private done = false;

  constructor(private readonly stops: readonly string[]) {}

  push(piece: string): StopResult {
    if (this.done) return { text: '', stopped: true };
    if (this.stops.length === 0) return { text: piece, stopped: false };
    const buf = this.pending + piece;
    let cut = -1;
    for (const s of this.stops) {
      const at = buf.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.done = true;
      this.pending = '';
      return { text: buf.slice(0, cut), stopped: true };
    }
    const hold = this.longestPartialSuffix(buf);
    this.pending = buf.slice(buf.length - hold);
    return { text: buf.slice(0, buf.length - hold), stopped: false };
  }

  /** At the end of generation the held-back tail turned out not to be a stop string. */
  flush(): string {
    const rest = this.done ? '' : this.pending;
    this.pending = '';
    return rest;
  }

  /** Length of the longest suffix of buf that is a proper prefix of some stop string. */
  private longestPartialSuffix(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      const maxK = Math.min(s.length - 1, buf.length);
      for (let k = maxK; k > best; k--) {
        if (buf.endsWith(s.slice(0, k))) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}
