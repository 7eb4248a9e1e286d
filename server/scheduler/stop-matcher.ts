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
    // The stop string that completes first, as if the text came one character at a
    // time (generation ends there: the model never writes what follows); of those that
    // complete at the same character, the one that starts first. Choosing by start alone
    // would make the result depend on the split: with stops "c" and "écé", "éc" + "é"
    // stops after "é" at "c", while one piece "écé" would have cut everything.
    let cut = -1;
    let end = -1;
    for (const s of this.stops) {
      const at = buf.indexOf(s);
      if (at < 0) continue;
      const e = at + s.length;
      if (end < 0 || e < end || (e === end && at < cut)) {
        cut = at;
        end = e;
      }
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
