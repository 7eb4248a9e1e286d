// The single engine loop: continuous batching over --parallel slots.
//
// One bounded FIFO of Jobs feeds it. Each step it (1) frees the slots of sequences that
// were cancelled or finished, (2) admits waiting jobs while their sequences fit in free
// slots, (3) builds one decode batch holding one generation token for every running
// sequence plus prefill chunks of newly admitted prompts, (4) awaits a single decode and
// (5) samples each row and hands the token to its sequence. A request that arrives while
// others generate therefore joins at the next step, and all running sequences share each
// decode. Only this loop touches the context, and it awaits every decode, so there is
// never more than one decode in flight.

import { BoundedQueue } from './queue.js';
import type { DecodeContext, EndReason, Job, JobHandle, SchedulerStats, SequenceSpec, StepInfo } from './types.js';

export class QueueFullError extends Error {
  constructor(readonly waiting: number) {
    super(`the wait queue is full (${waiting} requests waiting)`);
    this.name = 'QueueFullError';
  }
}

export class ShuttingDownError extends Error {
  constructor() {
    super('the server is shutting down');
    this.name = 'ShuttingDownError';
  }
}

interface Seq {
  spec: SequenceSpec;
  job: JobState;
  slot: number;
  /** Prompt tokens already in the cache. */
  prefilled: number;
  /** Token sampled last step, to be decoded this step (generation phase). */
  next: number;
  generated: number;
  /** Cache length of the slot. */
  pos: number;
  ended: boolean;
}

interface JobState {
  job: Job;
  enqueuedAt: number;
  cancelled: boolean;
  seqs: Seq[];
  admitted: boolean;
}

export interface EngineLoopOptions {
  maxWaiting: number;
  /** Most tokens one decode may carry. */
  nBatch: number;
  onStep?(info: StepInfo): void;
  /** Decode failures, for logging; the affected sequences end with 'error'. */
  onError?(err: Error): void;
}

export class EngineLoop {
  private readonly queue: BoundedQueue<JobState>;
  private readonly freeSlots: number[] = [];
  private readonly running = new Set<Seq>();
  private readonly runningJobs = new Set<JobState>();
  private wake: (() => void) | null = null;
  private accepting = true;
  private stopped = false;
  private loopDone: Promise<void>;
  private steps = 0;

  constructor(private readonly ctx: DecodeContext, private readonly opts: EngineLoopOptions) {
    if (opts.nBatch < ctx.nSeq) throw new RangeError(`nBatch (${opts.nBatch}) must be at least the number of slots (${ctx.nSeq})`);
    this.queue = new BoundedQueue(opts.maxWaiting);
    for (let s = ctx.nSeq - 1; s >= 0; s--) this.freeSlots.push(s);
    this.loopDone = this.run();
  }

  get slots(): number {
    return this.ctx.nSeq;
  }

  /** Queues a job. Throws QueueFullError / ShuttingDownError; a job needing more slots than exist is a caller bug. */
  submit(job: Job): JobHandle {
    if (!this.accepting) throw new ShuttingDownError();
    if (job.sequences.length < 1 || job.sequences.length > this.ctx.nSeq) {
      throw new RangeError(`a job needs 1..${this.ctx.nSeq} sequences, got ${job.sequences.length}`);
    }
    const st: JobState = { job, enqueuedAt: performance.now(), cancelled: false, seqs: [], admitted: false };
    if (!this.queue.push(st)) throw new QueueFullError(this.queue.length);
    this.kick();
    return { cancel: () => this.cancel(st) };
  }

  stats(): SchedulerStats {
    let held = 0;
    for (const s of this.running) held += s.pos;
    return {
      running: this.runningJobs.size,
      waiting: this.queue.length,
      slotsTotal: this.ctx.nSeq,
      slotsBusy: this.ctx.nSeq - this.freeSlots.length,
      kvUsage: held / (this.ctx.nSeq * this.ctx.nCtx),
      steps: this.steps,
    };
  }

  /** Refuse new jobs from now on (SIGTERM). Running and waiting jobs carry on. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Resolves once nothing is running or waiting. */
  async idle(pollMs = 10): Promise<void> {
    while (this.runningJobs.size > 0 || this.queue.length > 0) await new Promise((r) => setTimeout(r, pollMs));
  }

  /** Cancels everything (waiting and running) and ends the loop. */
  async close(): Promise<void> {
    this.accepting = false;
    for (const st of this.queue.drain()) this.endWaiting(st, 'cancelled');
    for (const st of this.runningJobs) st.cancelled = true;
    this.stopped = true;
    this.kick();
    await this.loopDone;
  }

  private cancel(st: JobState): void {
    if (st.cancelled) return;
    st.cancelled = true;
    if (!st.admitted) {
      if (this.queue.remove(st)) this.endWaiting(st, 'cancelled');
      return;
    }
    this.kick();
  }

  private endWaiting(st: JobState, reason: EndReason): void {
    for (const spec of st.job.sequences) safeCall(() => spec.onEnd(reason));
  }

  private kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private endSeq(seq: Seq, reason: EndReason, error?: Error): void {
    if (seq.ended) return;
    seq.ended = true;
    this.running.delete(seq);
    // Forget the slot's cache now so the next job can take it at once.
    try {
      this.ctx.truncate(seq.slot, 0);
    } catch (err) {
      this.opts.onError?.(err as Error);
    }
    this.freeSlots.push(seq.slot);
    safeCall(() => seq.spec.onEnd(reason, error));
  }

  private reap(): void {
    for (const st of this.runningJobs) {
      if (st.cancelled) for (const seq of st.seqs) this.endSeq(seq, 'cancelled');
      if (st.seqs.every((s) => s.ended)) this.runningJobs.delete(st);
    }
  }

  private admit(): void {
    for (;;) {
      const head = this.queue.peek();
      // FIFO: a job that needs more free slots than there are waits, and so do those behind it.
      if (!head || head.job.sequences.length > this.freeSlots.length) return;
      this.queue.shift();
      head.admitted = true;
      this.runningJobs.add(head);
      for (const spec of head.job.sequences) {
        const slot = this.freeSlots.pop()!;
        const seq: Seq = { spec, job: head, slot, prefilled: 0, next: -1, generated: 0, pos: 0, ended: false };
        head.seqs.push(seq);
        this.running.add(seq);
      }
      safeCall(() => head.job.onAdmit?.(performance.now() - head.enqueuedAt));
    }
  }

  private async run(): Promise<void> {
    for (;;) {
      this.reap();
      if (this.stopped && this.runningJobs.size === 0) return;
      if (!this.stopped) this.admit();
      if (this.running.size === 0) {
        if (this.stopped) continue;
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      await this.step();
      // Let I/O callbacks (new requests, client aborts, socket writes) run between steps.
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  private async step(): Promise<void> {
    const t0 = performance.now();
    const nBatch = this.opts.nBatch;
    const tokens = new Int32Array(nBatch);
    const positions = new Int32Array(nBatch);
    const seqIds = new Int32Array(nBatch);
    const want = new Uint8Array(nBatch);
    const rows: Seq[] = [];
    let n = 0;
    let prefillTokens = 0;
    // Sequence -> tokens it put into this batch.
    const members = new Map<Seq, number>();
    // Generation tokens first: nBatch >= slots, so every generating sequence always fits.
    for (const seq of this.running) {
      if (seq.prefilled < seq.spec.prompt.length) continue;
      tokens[n] = seq.next;
      positions[n] = seq.pos;
      seqIds[n] = seq.slot;
      want[n] = 1;
      rows.push(seq);
      members.set(seq, 1);
      n++;
    }
    // Then prompt chunks, oldest admitted first, as far as the batch has room.
    for (const seq of this.running) {
      const prompt = seq.spec.prompt;
      if (seq.prefilled >= prompt.length) continue;
      const take = Math.min(prompt.length - seq.prefilled, nBatch - n);
      if (take <= 0) break;
      for (let i = 0; i < take; i++) {
        tokens[n] = prompt[seq.prefilled + i];
        positions[n] = seq.pos + i;
        seqIds[n] = seq.slot;
        want[n] = 0;
        n++;
      }
      const finishes = seq.prefilled + take === prompt.length;
      if (finishes) {
        want[n - 1] = 1;
        rows.push(seq);
      }
      members.set(seq, take);
      prefillTokens += take;
    }
    const batch = { tokens: tokens.subarray(0, n), positions: positions.subarray(0, n), seqIds: seqIds.subarray(0, n), wantLogits: want.subarray(0, n) };
    let logits: Float32Array;
    try {
      logits = await this.ctx.decode(batch);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.opts.onError?.(e);
      for (const seq of members.keys()) this.endSeq(seq, 'error', e);
      this.steps++;
      return;
    }
    // Commit the positions the decode consumed.
    for (const [seq, count] of members) {
      if (seq.prefilled < seq.spec.prompt.length) seq.prefilled += count;
      seq.pos += count;
    }
    const nVocab = rows.length > 0 ? logits.length / rows.length : 0;
    rows.forEach((seq, r) => {
      if (seq.ended) return;
      // A cancel that arrived during the decode wins: the row is dropped unseen.
      if (seq.job.cancelled) return;
      const row = logits.subarray(r * nVocab, (r + 1) * nVocab);
      let keepGoing: boolean;
      let picked;
      try {
        picked = seq.spec.pick(row);
        if (seq.spec.isEndToken(picked.token)) return this.endSeq(seq, 'stop');
        seq.generated++;
        keepGoing = seq.spec.onToken(picked);
      } catch (err) {
        return this.endSeq(seq, 'error', err instanceof Error ? err : new Error(String(err)));
      }
      if (!keepGoing) return this.endSeq(seq, 'stop');
      if (seq.generated >= seq.spec.maxNewTokens) return this.endSeq(seq, 'length');
      seq.next = picked.token;
    });
    this.steps++;
    this.opts.onStep?.({ sequences: members.size, tokens: n, prefillTokens, ms: performance.now() - t0 });
  }

}

/** Callbacks belong to request handlers; one that throws must not stop the loop. */
function safeCall(fn: () => void): void {
  try {
    fn();
  } catch {
    /* the handler's own error path reports it */
  }
}
