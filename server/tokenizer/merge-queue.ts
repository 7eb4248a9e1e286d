// Priority queue of candidate merges for the BPE encoder: highest score first and, on
// equal scores, the leftmost pair first (sentencepiece's order). Entries live in
// parallel typed arrays (reused across calls, so encoding a long prompt allocates almost
// nothing); the heap itself orders entry numbers and moves elements into a hole rather
// than swapping, which keeps pop cheap.

export class MergeQueue {
  private score = new Float64Array(1024);
  private left: Int32Array = new Int32Array(1024);
  private right: Int32Array = new Int32Array(1024);
  private size: Int32Array = new Int32Array(1024);
  /** Heap of entry numbers. */
  private heap: Int32Array = new Int32Array(1024);
  private entries = 0;
  private n = 0;

  get length(): number {
    return this.n;
  }

  clear(): void {
    this.n = 0;
    this.entries = 0;
  }

  /** Does entry a come out before entry b? */
  private before(a: number, b: number): boolean {
    const sa = this.score[a];
    const sb = this.score[b];
    return sa > sb || (sa === sb && this.left[a] < this.left[b]);
  }

  private grow(): void {
    const cap = this.score.length * 2;
    const f = new Float64Array(cap);
    f.set(this.score);
    this.score = f;
    const g = (a: Int32Array): Int32Array => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    this.left = g(this.left);
    this.right = g(this.right);
    this.size = g(this.size);
    this.heap = g(this.heap);
  }

  push(score: number, left: number, right: number, size: number): void {
    // Entries are reclaimed only by clear(): one encode pushes about 3 per character.
    if (this.entries === this.score.length) this.grow();
    const e = this.entries++;
    this.score[e] = score;
    this.left[e] = left;
    this.right[e] = right;
    this.size[e] = size;
    const heap = this.heap;
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(e, heap[p])) break;
      heap[i] = heap[p];
      i = p;
    }
    heap[i] = e;
  }

  /** Remove the top entry; its fields are left in topLeft/topRight/topSize. */
  topLeft = 0;
  topRight = 0;
  topSize = 0;
  pop(): void {
    const heap = this.heap;
    const top = heap[0];
    this.topLeft = this.left[top];
    this.topRight = this.right[top];
    this.topSize = this.size[top];
    const last = --this.n;
    if (last === 0) return;
    const e = heap[last];
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= last) break;
      const r = l + 1;
      const c = r < last && this.before(heap[r], heap[l]) ? r : l;
      if (!this.before(heap[c], e)) break;
      heap[i] = heap[c];
      i = c;
    }
    heap[i] = e;
  }
}
