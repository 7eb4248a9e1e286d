// The single engine loop: continuous batching over --parallel slots.
//
// One bounded FIFO of Jobs feeds it. When a decode returns, the loop (1) samples each
// row, (2) frees the slots of sequences that finished or were cancelled, (3) admits
// waiting jobs while their sequences fit in free slots, (4) starts the next decode,
// holding one generation token for every running sequence plus prefill chunks of newly
// admitted prompts, and (5) hands the new tokens to the request handlers while that
// decode runs. A request that arrives while others generate therefore joins at the next
// step, and all running sequences share each decode. Only this loop touches the context
// and it awaits every decode, so there is never more than one decode in flight.

import { BoundedQueue } from './queue.js';
import { SlotCache } from './slot-cache.js';
import type { DecodeContext, EndReason, Job, JobHandle, Picked, SchedulerStats, SequenceSpec, StepInfo } from './types.js';

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
  /** onEnd was called: no more callbacks, its rows are ignored. */
  ended: boolean;
  /** Its slot was cleared and handed back (only ever while no decode is in flight). */
  released: boolean;
}

interface JobState {
  job: Job;
  enqueuedAt: number;
  cancelled: boolean;
  seqs: Seq[];
  admitted: boolean;
}

interface Flight {
  promise: Promise<Float32Array>;
  /** Sequences whose logits row is in the result, in order. */
  rows: Seq[];
  /** Per row: -1 to sample the next token, else the prompt position it scores. */
  rowPos: number[];
  /** Sequence -> tokens it put into the batch. */
  members: Map<Seq, number>;
  tokens: number;
  prefillTokens: number;
  t0: number;
}

/** Callbacks gathered while no decode runs, delivered once the next one is under way. */
type Emission =
  | { kind: 'token'; seq: Seq; picked: Picked }
  | { kind: 'end'; seq: Seq; reason: EndReason; error?: Error };

export interface EngineLoopOptions {
  maxWaiting: number;
  /** Most tokens one decode may carry. */
  nBatch: number;
  onStep?(info: StepInfo): void;
  /** Decode failures, for logging; the affected sequences end with 'error'. */
  onError?(err: Error): void;
}

/**
 * Pipelining: after a decode returns, the loop samples every row, frees the slots of
 * sequences that ended, admits newcomers and starts the next decode at once; only then
 * does it hand the tokens to the request handlers (text, SSE writes), which run while
 * the engine computes. A handler that ends its sequence (stop string) while that
 * sequence is in the running decode gets its end at once; the row is dropped and the
 * slot freed when the decode returns. Slots are only cleared while no decode runs.
 */
export class EngineLoop {
  private readonly queue: BoundedQueue<JobState>;
  private readonly freeSlots: number[] = [];
  /** What each slot's KV cache holds; kept after a sequence ends for prefix reuse. */
  private readonly cache: SlotCache;
  private readonly running = new Set<Seq>();
  private readonly runningJobs = new Set<JobState>();
  private wake: (() => void) | null = null;
  private accepting = true;
  private stopped = false;
  private loopDone: Promise<void>;
  private steps = 0;
  private inflight: Flight | null = null;
  // Batch buffers, reused every step.
  private readonly bTokens: Int32Array;
  private readonly bPositions: Int32Array;
  private readonly bSeqIds: Int32Array;
  private readonly bWant: Uint8Array;

  constructor(private readonly ctx: DecodeContext, private readonly opts: EngineLoopOptions) {
    if (opts.nBatch < ctx.nSeq) throw new RangeError(`nBatch (${opts.nBatch}) must be at least the number of slots (${ctx.nSeq})`);
    this.queue = new BoundedQueue(opts.maxWaiting);
    for (let s = ctx.nSeq - 1; s >= 0; s--) this.freeSlots.push(s);
    this.cache = new SlotCache(ctx.nSeq);
    this.bTokens = new Int32Array(opts.nBatch);
    this.bPositions = new Int32Array(opts.nBatch);
    this.bSeqIds = new Int32Array(opts.nBatch);
    this.bWant = new Uint8Array(opts.nBatch);
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
    // Jobs that free slots will take at the next admit() are passing through, not
    // waiting: only the rest count against maxWaiting (so --max-queue 0 still serves).
    if (this.waitingBeyondFreeSlots(job.sequences.length) > this.queue.capacity) throw new QueueFullError(this.queue.length);
    this.queue.push(st, true);
    this.kick();
    return { cancel: () => this.cancel(st) };
  }

  /** How many queued jobs (plus one more of `extra` sequences) would find no free slot, in FIFO order. */
  private waitingBeyondFreeSlots(extra: number): number {
    let free = this.freeSlots.length;
    let waiting = 0;
    const seqCounts = this.queue.map((st) => st.job.sequences.length);
    seqCounts.push(extra);
    for (const n of seqCounts) {
      // FIFO: once one job must wait, every job behind it waits too.
      if (waiting === 0 && n <= free) free -= n;
      else waiting++;
    }
    return waiting;
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

  /**
   * Hands the slot back. Its KV cache stays for prefix reuse unless `clear` (a failed
   * decode leaves it unknown). Only while no decode is in flight.
   */
  private release(seq: Seq, clear = false): void {
    if (seq.released) return;
    seq.released = true;
    this.running.delete(seq);
    if (clear) {
      this.cache.clear(seq.slot);
      this.truncate(seq.slot, 0);
    }
    this.freeSlots.push(seq.slot);
  }

  private truncate(slot: number, p0: number): void {
    try {
      this.ctx.truncate(slot, p0);
    } catch (err) {
      this.opts.onError?.(err as Error);
    }
  }

  private notifyEnd(seq: Seq, reason: EndReason, error?: Error): void {
    if (seq.ended) return;
    seq.ended = true;
    safeCall(() => seq.spec.onEnd(reason, error));
  }

  /** Frees what cancelled or already-ended sequences hold; drops finished jobs. No decode in flight. */
  private reap(): void {
    for (const st of this.runningJobs) {
      for (const seq of st.seqs) {
        if (st.cancelled) {
          this.release(seq);
          this.notifyEnd(seq, 'cancelled');
        } else if (seq.ended) {
          this.release(seq);
        }
      }
      if (st.seqs.every((s) => s.released)) this.runningJobs.delete(st);
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
        const reuseOk = spec.cachePrompt !== false && spec.scorePrompt === undefined;
        const { slot, reuse } = this.cache.take(this.freeSlots, spec.prompt, reuseOk);
        // Forget what follows the shared prefix; the prefix itself is not decoded again.
        this.truncate(slot, reuse);
        const seq: Seq = { spec, job: head, slot, prefilled: reuse, next: -1, generated: 0, pos: reuse, ended: false, released: false };
        head.seqs.push(seq);
        this.running.add(seq);
        if (spec.onCached) safeCall(() => spec.onCached!(reuse));
      }
      safeCall(() => head.job.onAdmit?.(performance.now() - head.enqueuedAt));
    }
  }

  private async run(): Promise<void> {
    for (;;) {
      if (!this.inflight) {
        this.reap();
        if (this.stopped && this.runningJobs.size === 0) return;
        if (!this.stopped) this.admit();
        if (this.running.size === 0) {
          if (this.stopped) continue;
          await new Promise<void>((r) => (this.wake = r));
          continue;
        }
        this.inflight = this.launch();
      }
      const flight = this.inflight;
      let logits: Float32Array | null = null;
      let failure: Error | null = null;
      try {
        logits = await flight.promise;
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err));
      }
      this.inflight = null;
      // No decode runs now: sample, free what ended, admit, and start the next step
      // before handing tokens to the handlers.
      const out = this.complete(flight, logits, failure);
      this.reap();
      if (!this.stopped) this.admit();
      if (this.running.size > 0) this.inflight = this.launch();
      this.deliver(out);
      // Yield a full event-loop turn (I/O, timers) each step even if a decode settles
      // at once (a rejected batch); the next decode is already running meanwhile.
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** Builds one batch: a generation token per generating sequence, then prompt chunks. */
  private launch(): Flight {
    const t0 = performance.now();
    const nBatch = this.opts.nBatch;
    const tokens = this.bTokens;
    const positions = this.bPositions;
    const seqIds = this.bSeqIds;
    const want = this.bWant;
    const rows: Seq[] = [];
    const rowPos: number[] = [];
    const members = new Map<Seq, number>();
    let n = 0;
    let prefillTokens = 0;
    // Generation tokens first: nBatch >= slots, so every generating sequence always fits.
    for (const seq of this.running) {
      if (seq.ended || seq.prefilled < seq.spec.prompt.length) continue;
      tokens[n] = seq.next;
      positions[n] = seq.pos;
      seqIds[n] = seq.slot;
      want[n] = 1;
      this.cache.append(seq.slot, [seq.next]);
      rows.push(seq);
      rowPos.push(-1);
      members.set(seq, 1);
      n++;
    }
    // Then prompt chunks, oldest admitted first, as far as the batch has room.
    for (const seq of this.running) {
      const prompt = seq.spec.prompt;
      if (seq.ended || seq.prefilled >= prompt.length) continue;
      const take = Math.min(prompt.length - seq.prefilled, nBatch - n);
      if (take <= 0) break;
      const scoring = seq.spec.scorePrompt !== undefined;
      for (let i = 0; i < take; i++) {
        const at = seq.prefilled + i;
        tokens[n] = prompt[at];
        positions[n] = seq.pos + i;
        seqIds[n] = seq.slot;
        // Scoring wants every prompt position's logits but the last (that one samples).
        want[n] = scoring && at < prompt.length - 1 ? 1 : 0;
        if (want[n]) {
          rows.push(seq);
          rowPos.push(at);
        }
        n++;
      }
      this.cache.append(seq.slot, tokens.subarray(n - take, n));
      if (seq.prefilled + take === prompt.length) {
        want[n - 1] = 1;
        rows.push(seq);
        rowPos.push(-1);
      }
      members.set(seq, take);
      prefillTokens += take;
    }
    // The buffers are refilled only by the next launch, which comes after this decode has returned.
    const batch = { tokens: tokens.subarray(0, n), positions: positions.subarray(0, n), seqIds: seqIds.subarray(0, n), wantLogits: want.subarray(0, n) };
    let promise: Promise<Float32Array>;
    try {
      promise = this.ctx.decode(batch);
    } catch (err) {
      promise = Promise.reject(err);
    }
    // The loop awaits this promise only after it has delivered the previous step's
    // tokens and yielded a turn; a decode that rejects at once would otherwise count as
    // an unhandled rejection and end the process. The await below still sees the error.
    promise.catch(() => {});
    return { promise, rows, rowPos, members, tokens: n, prefillTokens, t0 };
  }

  /** Commits a finished step: positions, samples, ends. Frees ended slots; returns the callbacks to make. */
  private complete(f: Flight, logits: Float32Array | null, failure: Error | null): Emission[] {
    const out: Emission[] = [];
    this.steps++;
    if (failure || !logits) {
      const e = failure ?? new Error('decode returned no logits');
      this.opts.onError?.(e);
      for (const seq of f.members.keys()) {
        this.release(seq, true);
        if (!seq.ended) out.push({ kind: 'end', seq, reason: 'error', error: e });
      }
      return out;
    }
    for (const [seq, count] of f.members) {
      if (seq.prefilled < seq.spec.prompt.length) seq.prefilled += count;
      seq.pos += count;
    }
    const nVocab = f.rows.length > 0 ? logits.length / f.rows.length : 0;
    f.rows.forEach((seq, r) => {
      // Ended (stop string) or cancelled while the decode ran: the row is dropped unseen.
      if (seq.ended || seq.job.cancelled || seq.released) return;
      const row = logits.subarray(r * nVocab, (r + 1) * nVocab);
      const scoreAt = f.rowPos[r];
      if (scoreAt >= 0) {
        try {
          seq.spec.scorePrompt!(scoreAt, row);
        } catch (err) {
          this.release(seq);
          out.push({ kind: 'end', seq, reason: 'error', error: err instanceof Error ? err : new Error(String(err)) });
        }
        return;
      }
      // max_tokens 0 (prompt scoring): the prompt is in, nothing is generated.
      if (seq.spec.maxNewTokens <= 0) {
        this.release(seq);
        out.push({ kind: 'end', seq, reason: 'length' });
        return;
      }
      let picked: Picked;
      try {
        picked = seq.spec.pick(row);
      } catch (err) {
        this.release(seq);
        out.push({ kind: 'end', seq, reason: 'error', error: err instanceof Error ? err : new Error(String(err)) });
        return;
      }
      if (seq.spec.isEndToken(picked.token)) {
        this.release(seq);
        out.push({ kind: 'end', seq, reason: 'stop' });
        return;
      }
      seq.generated++;
      out.push({ kind: 'token', seq, picked });
      if (seq.generated >= seq.spec.maxNewTokens) {
        this.release(seq);
        out.push({ kind: 'end', seq, reason: 'length' });
      } else {
        seq.next = picked.token;
      }
    });
    this.opts.onStep?.({ sequences: f.members.size, tokens: f.tokens, prefillTokens: f.prefillTokens, ms: performance.now() - f.t0 });
    return out;
  }

  /** Hands tokens and ends to the handlers (while the next decode runs). */
  private deliver(out: Emission[]): void {
    for (const e of out) {
      if (e.seq.ended) continue;
      if (e.kind === 'end') {
        this.notifyEnd(e.seq, e.reason, e.error);
        continue;
      }
      let keep = true;
      try {
        keep = e.seq.spec.onToken(e.picked);
      } catch (err) {
        this.notifyEnd(e.seq, 'error', err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      // A stop string: the end is reported now; the slot is freed when the decode in flight returns.
      if (!keep) this.notifyEnd(e.seq, 'stop');
    }
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
