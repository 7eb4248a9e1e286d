// Priority queue of candidate merges for the BPE encoder: highest score first and, on
// equal scores, the leftmost pair first (sentencepiece's order). Parallel typed arrays,
// reused across calls, so encoding a long prompt allocates almost nothing.

export class MergeQueue {
  private score = new Float64Array(1024);
  private left = new Int32Array(1024);
  private right = new Int32Array(1024);
  private size = new Int32Array(1024);
  private n = 0;

  get length(): number {
    return this.n;
  }

  clear(): void {
    this.n = 0;
  }

  /** Does entry a come out before entry b? */
  private before(a: number, b: number): boolean {
    const sa = this.score[a];
    const sb = this.score[b];
    return sa > sb || (sa === sb && this.left[a] < this.left[b]);
  }

  private swap(a: number, b: number): void {
    const s = this.score[a]; this.score[a] = this.score[b]; this.score[b] = s;
    const l = this.left[a]; this.left[a] = this.left[b]; this.left[b] = l;
    const r = this.right[a]; this.right[a] = this.right[b]; this.right[b] = r;
    const z = this.size[a]; this.size[a] = this.size[b]; this.size[b] = z;
  }

  private grow(): void {
    const cap = this.score.length * 2;
    const g = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.score = g(this.score, (n) => new Float64Array(n));
    this.left = g(this.left, (n) => new Int32Array(n));
    this.right = g(this.right, (n) => new Int32Array(n));
    this.size = g(this.size, (n) => new Int32Array(n));
  }

  push(score: number, left: number, right: number, size: number): void {
    if (this.n === this.score.length) this.grow();
    let i = this.n++;
    this.score[i] = score;
    this.left[i] = left;
    this.right[i] = right;
    this.size[i] = size;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Remove the top entry; its fields are left in topLeft/topRight/topSize. */
  topLeft = 0;
  topRight = 0;
  topSize = 0;
  pop(): void {
    this.topLeft = this.left[0];
    this.topRight = this.right[0];
    this.topSize = this.size[0];
    const last = --this.n;
    if (last === 0) return;
    this.score[0] = this.score[last];
    this.left[0] = this.left[last];
    this.right[0] = this.right[last];
    this.size[0] = this.size[last];
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= last) break;
      const r = l + 1;
      const c = r < last && this.before(r, l) ? r : l;
      if (!this.before(c, i)) break;
      this.swap(c, i);
      i = c;
    }
  }
}
