// What the HTTP layer needs from a loaded model, in one object: the decode context (for
// the engine loop), text <-> tokens, the chat template and per-sequence samplers.
// load.ts builds it from a GGUF file with the real engine, tokenizer and sampler.

import type { ChatTemplate, RenderOptions } from '../chat/template.js';
import type { TokensOrBound } from '../chat/prompt-tokens.js';
import type { ChatMessage } from '../http/validate.js';
import type { SamplingSettings } from '../http/validate.js';
import type { DecodeContext, Picked } from './types.js';

/** Streams token ids to text, emitting only complete UTF-8. */
export interface TextStream {
  push(token: number): string;
  flush(): string;
}

export interface RuntimeTokenizer {
  readonly nVocab: number;
  /**
   * addBos: prepend BOS. special: read control-token text such as "</s>" as that token
   * (chat templates write them as text).
   */
  encode(text: string, addBos: boolean, special?: boolean): number[];
  decode(tokens: readonly number[]): string;
  /**
   * continuation: the text follows earlier text (a completion after its prompt), so the
   * first token keeps its leading space; otherwise it is dropped as sentencepiece does.
   */
  stream(continuation: boolean): TextStream;
  /** The bytes one token stands for (logprobs' `bytes`). */
  tokenBytes(token: number): Uint8Array;
  /** -1 when the vocabulary has none. */
  readonly eosId: number;
  /** End of generation: EOS and any end-of-turn token. */
  isEndToken(token: number): boolean;
  /** BOS/EOS as text, for chat templates. */
  readonly bosText: string;
  readonly eosText: string;
  /** Whether prompts start with BOS (GGUF tokenizer.ggml.add_bos_token, default true). */
  readonly addBos: boolean;
  /** Most input bytes one token stands for: bounds the token count by size (chat/prompt-tokens.ts). */
  readonly maxTokenBytes?: number;
}

/**
 * Text work off the event loop: the chat template and the tokenizer in a worker thread
 * with a time budget (chat/text-worker.ts). `limit`: refuse texts that cannot fit so many tokens.
 */
export interface TextService {
  chat(messages: readonly ChatMessage[], limit: number | null, opts?: RenderOptions): Promise<TokensOrBound>;
  encode(text: string, addBos: boolean, special: boolean, limit: number | null): Promise<TokensOrBound>;
}

export interface PickerOptions {
  settings: SamplingSettings;
  /** Seed for this sequence (already varied per choice). */
  seed: number;
  prompt: readonly number[];
  /** Top alternatives wanted per token; null: no logprobs at all. */
  topLogprobs: number | null;
}

import type { SparseStats, StepPartMs } from '../observability/metrics.js';
import type { DeviceInfo, HybridStats } from '../engine/types.js';

export interface ModelRuntime {
  /** Model id as the API shows it. */
  readonly id: string;
  /** Unix seconds when the model was loaded. */
  readonly created: number;
  readonly nCtx: number;
  readonly nSeq: number;
  readonly nBatch: number;
  readonly ctx: DecodeContext;
  readonly tokenizer: RuntimeTokenizer;
  readonly template: ChatTemplate;
  /** Absent (test runtimes): the routes render and tokenise inline. */
  readonly text?: TextService;
  /** Fresh sampler for one sequence. */
  makePicker(opts: PickerOptions): (logits: Float32Array) => Picked;
  /** Extra facts for GET /v1/models. */
  readonly meta: Record<string, unknown>;
  /** Sparse-engine figures for the metrics (absent for engines without them). */
  sparsity?(): SparseStats | null;
  /** Milliseconds the CPU decode steps spent per part since start (absent: not reported). */
  stepParts?(): StepPartMs;
  /** The hybrid runtime: what sits on the device, and the work per side (absent on the CPU). */
  readonly device?: { info: DeviceInfo; stats(): HybridStats };
  /**
   * Why the model can no longer be served (its file was changed under the server), as
   * public text; null/absent while it is fine. See model-file-guard.ts.
   */
  fault?(): string | null;
  dispose(): void;
}
