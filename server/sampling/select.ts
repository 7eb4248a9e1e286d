// Partial selection over logits, so that sampling never sorts the whole vocabulary:
// argmax, the k largest (a bounded heap, O(n log k)), and the top-p set (a quickselect
// by probability mass, expected O(n)).
//
// Order everywhere: larger value first; on equal values the lower token id first.
// NaN and -Infinity are never selected.

/** Index of the largest value, lowest index on ties; -1 if none is > -Infinity. */
export function argmax(w: Float32Array): number {
  let best = -1;
  let bv = -Infinity;
  for (let i = 0; i < w.length; i++) {
    if (w[i] > bv) {
      bv = w[i];
      best = i;
    }
  }
  return best;
}

/** Does id a come before id b (a larger, or equal and a < b)? */
function ahead(w: Float32Array, a: number, b: number): boolean {
  return w[a] > w[b] || (w[a] === w[b] && a < b);
}

/**
 * The k best ids into out[0..count), in order (best first). Returns count (< k when
 * fewer than k values are > -Infinity).
 */
export function topK(w: Float32Array, k: number, out: Int32Array): number {
  // Min-heap on `ahead`: the root is the worst of the kept ids.
  let n = 0;
  const siftDown = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      const worse = r < n && ahead(w, out[l], out[r]) ? r : l;
      if (!ahead(w, out[i], out[worse])) return;
      const t = out[i];
      out[i] = out[worse];
      out[worse] = t;
      i = worse;
    }
  };
  for (let id = 0; id < w.length; id++) {
    if (!(w[id] > -Infinity)) continue;
    if (n < k) {
      let i = n++;
      out[i] = id;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!ahead(w, out[p], out[i])) break;
        const t = out[i];
        out[i] = out[p];
        out[p] = t;
        i = p;
      }
    } else if (ahead(w, id, out[0])) {
      out[0] = id;
      siftDown(0);
    }
  }
  // Heap-sort in place: repeatedly move the worst to the end.
  for (let end = n - 1; end > 0; end--) {
    const t = out[0];
    out[0] = out[end];
    out[end] = t;
    const saved = n;
    n = end;
    siftDown(0);
    n = saved;
  }
  return n;
}

/**
 * Top-p without sorting: rearranges ids[0..count) (with their weights e[], kept aligned)
 * so that the first `kept` of them are exactly the shortest best-first prefix whose
 * weight reaches `target`, in no particular order, and returns kept (at least 1).
 * Quickselect on the (value, id) order, descending into the side that holds the cut:
 * expected O(count).
 */
export function massPrefix(w: Float32Array, ids: Int32Array, e: Float64Array, count: number, target: number): number {
  let lo = 0;
  let hi = count;
  let acc = 0; // weight of ids[0..lo), all ahead of everything in [lo, hi)
  const swap = (a: number, b: number): void => {
    const t = ids[a];
    ids[a] = ids[b];
    ids[b] = t;
    const f = e[a];
    e[a] = e[b];
    e[b] = f;
  };
  while (hi - lo > 16) {
    // Median of three (by the order) as pivot, moved to the end of the range.
    const mid = (lo + hi) >> 1;
    const last = hi - 1;
    if (ahead(w, ids[mid], ids[lo])) swap(mid, lo);
    if (ahead(w, ids[last], ids[lo])) swap(last, lo);
    if (ahead(w, ids[mid], ids[last])) swap(mid, last);
    const pivot = ids[last];
    let store = lo;
    let mass = 0;
    for (let i = lo; i < last; i++) {
      if (ahead(w, ids[i], pivot)) {
        mass += e[i];
        swap(i, store++);
      }
    }
    swap(store, last); // pivot right after the ids ahead of it
    if (acc + mass >= target) {
      hi = store;
      continue;
    }
    acc += mass + e[store];
    if (acc >= target) return store + 1;
    lo = store + 1;
  }
  // Small range: insertion sort it, then walk.
  for (let i = lo + 1; i < hi; i++) {
    for (let j = i; j > lo && ahead(w, ids[j], ids[j - 1]); j--) swap(j, j - 1);
  }
  for (let i = lo; i < hi; i++) {
    acc += e[i];
    if (acc >= target) return i + 1;
  }
  return Math.max(1, hi); // rounding left the target just out of reach: keep all
}
