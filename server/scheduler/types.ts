// Typed objects that cross from the HTTP handlers into the engine loop. Nothing here
// is JSON: handlers turn a validated request into Jobs, the loop only sees tokens,
// callbacks and numbers.

import type { DecodeBatch } from '../engine/types.js';

/** The part of engine.ts's Context the loop uses (a test may hand in a controllable one). */
export interface DecodeContext {
  readonly nSeq: number;
  readonly nCtx: number;
  decode(batch: DecodeBatch): Promise<Float32Array>;
  truncate(seq: number, p0: number): void;
}

export interface TopLogprob {
  token: number;
  logprob: number;
}

/** What the sampler picked for one sequence in one step. */
export interface Picked {
  token: number;
  /** Present when the request asked for logprobs. */
  logprob?: number;
  top?: TopLogprob[];
}

/** 'cancelled': the client went away or the server is shutting down. */
export type EndReason = 'stop' | 'length' | 'cancelled' | 'error';

export interface SequenceSpec {
  prompt: readonly number[];
  /** Already cut to fit the context. */
  maxNewTokens: number;
  /** Samples one row of logits (nVocab floats). Runs on the loop; must be synchronous. */
  pick(logits: Float32Array): Picked;
  /** End-of-generation tokens (EOS, end-of-turn); they end the sequence and are not shown. */
  isEndToken(token: number): boolean;
  /** Called for each generated token; returning false ends the sequence with 'stop' (stop string). */
  onToken(p: Picked): boolean;
  onEnd(reason: EndReason, error?: Error): void;
  /**
   * Prompt scoring (echo + logprobs): called, synchronously on the loop, with the logits at
   * prompt position `pos` (they predict prompt[pos + 1]) for every position but the last.
   * The row is only valid during the call.
   */
  scorePrompt?(pos: number, logits: Float32Array): void;
  /** Reuse a slot's cached prompt prefix (default true; scoring never does). */
  cachePrompt?: boolean;
  /** Called at admission with the prompt tokens found in the slot's cache (not prefilled again). */
  onCached?(tokens: number): void;
}

export interface Job {
  /** One per choice; all of a job's sequences are admitted together. */
  sequences: SequenceSpec[];
  /** Called when the job leaves the wait queue and gets slots. */
  onAdmit?(queueMs: number): void;
}

export interface JobHandle {
  /** Stops the job: a waiting job leaves the queue, a running one frees its slots before the next step. */
  cancel(): void;
}

export interface StepInfo {
  /** Sequences that contributed at least one token to this step. */
  sequences: number;
  tokens: number;
  prefillTokens: number;
  ms: number;
}

export interface SchedulerStats {
  running: number;
  waiting: number;
  slotsTotal: number;
  slotsBusy: number;
  /** Positions held in the KV cache over all slots / (slots * nCtx). */
  kvUsage: number;
  steps: number;
}
