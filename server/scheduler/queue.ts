// The bounded wait queue between the HTTP handlers and the engine loop. FIFO; a push
// into a full queue is refused (the handler turns that into 429 + Retry-After) rather
// than letting work pile up without bound.

export class BoundedQueue<T> {
  private items: T[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`queue capacity must be a non-negative integer, got ${capacity}`);
  }

  get length(): number {
    return this.items.length;
  }

  /** false when full; `force` skips the check (the caller counted capacity its own way). */
  push(item: T, force = false): boolean {
    if (!force && this.items.length >= this.capacity) return false;
    this.items.push(item);
    return true;
  }

  map<U>(fn: (item: T) => U): U[] {
    return this.items.map(fn);
  }

  peek(): T | undefined {
    return this.items[0];
  }

  shift(): T | undefined {
    return this.items.shift();
  }

  /** Removes one item (a waiting request whose client went away). */
  remove(item: T): boolean {
    const i = this.items.indexOf(item);
    if (i < 0) return false;
    this.items.splice(i, 1);
    return true;
  }

  /** Takes every item out, oldest first. */
  drain(): T[] {
    const all = this.items;
    this.items = [];
    return all;
  }
}
