// One generation request, shared by /v1/completions and /v1/chat/completions: turns
// prompts (already tokens) into engine Jobs, and tokens coming back into text per
// choice (UTF-8 completed, stop strings cut and held back), with timings and metrics.
// The endpoint modules only shape the JSON.

import { randomInt } from 'node:crypto';
import { ApiError } from './errors.js';
import type { SamplingSettings } from './validate.js';
import { EngineLoop, QueueFullError, ShuttingDownError } from '../scheduler/engine-loop.js';
import { StopMatcher } from '../scheduler/stop-matcher.js';
import type { ModelRuntime, TextStream } from '../scheduler/runtime.js';
import type { EndReason, JobHandle, Picked, SequenceSpec } from '../scheduler/types.js';
import type { Metrics } from '../observability/metrics.js';
import { logprobsOf } from '../sampling/sampler.js';
import { constrainedPicker, makeConstraint } from '../grammar/picker.js';

export interface GenerationPlan {
  /** Tokenised prompts; each gets n choices, numbered prompt-major as OpenAI does. */
  prompts: number[][];
  n: number;
  maxTokens: number | undefined;
  stop: string[];
  settings: SamplingSettings;
  topLogprobs: number | null;
  /** Completions continue the prompt's text (keep the first token's space); chat replies start fresh. */
  continuation: boolean;
  /** The request field that held the prompt, for the context-length error. */
  promptParam: string;
  /** Score the prompt's tokens with this many top alternatives (echo + logprobs); null: do not. */
  scorePrompt?: number | null;
  /** Reuse a slot's cached prefix (cache_prompt; default true). */
  cachePrompt?: boolean;
  /** GBNF the output must follow (structured output); null: free text. */
  grammar?: string | null;
}

export interface Choice {
  index: number;
  promptIndex: number;
  /** Text shown so far (stop strings removed). */
  text: string;
  completionTokens: number;
  /** Every generated token with its logprobs (only when asked for), up to a stop string. */
  picks: Picked[];
  /** Per pick: where its text starts in `text` (a token cut by a stop string is not listed). */
  offsets: number[];
  finishReason: 'stop' | 'length' | null;
  endReason: EndReason | null;
  /** The request asked for more tokens than fit, so max_tokens was cut. */
  cut: boolean;
  /** With scorePrompt: per prompt token, its logprob and top alternatives (null for the first). */
  promptPicks: (Picked | null)[] | null;
  /** Prompt tokens found in the slot's cache (not processed again). */
  cachedTokens: number;
}

export interface GenerationListener {
  /** New text (possibly empty when only logprobs arrived) for one choice. */
  onDelta?(choice: Choice, text: string, picks: Picked[], offsets: number[]): void;
  onChoiceEnd?(choice: Choice): void;
}

export interface GenerationSummary {
  promptTokens: number;
  completionTokens: number;
  ttftMs: number | null;
  queueMs: number | null;
  tokensPerSecond: number | null;
  finishReason: string;
}

/**
 * Checks every prompt against the context and submits one job (all choices together).
 * Throws ApiError for prompts that do not fit, a full queue (429) and shutdown (503).
 */
export class Generation {
  readonly choices: Choice[] = [];
  readonly promptTokens: number;
  private readonly n: number;
  readonly done: Promise<void>;
  private handle: JobHandle;
  private resolveDone!: () => void;
  private remaining: number;
  private readonly t0 = performance.now();
  private firstTokenAt: number | null = null;
  private lastTokenAt: number | null = null;
  private queueMs: number | null = null;
  private error: Error | null = null;

  constructor(
    loop: EngineLoop,
    private readonly runtime: ModelRuntime,
    plan: GenerationPlan,
    private readonly metrics: Metrics,
    private readonly listener: GenerationListener,
  ) {
    const nCtx = runtime.nCtx;
    plan.prompts.forEach((p, i) => {
      if (p.length === 0) throw new ApiError(400, `The prompt is empty after tokenisation.`, { param: plan.promptParam, code: 'invalid_value' });
      if (p.length >= nCtx) {
        const which = plan.prompts.length > 1 ? ` (prompt ${i})` : '';
        throw new ApiError(
          400,
          `This model's maximum context length is ${nCtx} tokens, but the prompt${which} is ${p.length} tokens; at least one token must be left for the reply.`,
          { param: plan.promptParam, code: 'context_length_exceeded' },
        );
      }
    });
    this.promptTokens = plan.prompts.reduce((a, p) => a + p.length, 0);
    this.n = plan.n;
    const baseSeed = plan.settings.seed ?? randomInt(0, 2 ** 31);
    const specs: SequenceSpec[] = [];
    plan.prompts.forEach((prompt, pi) => {
      const room = nCtx - prompt.length;
      const maxNew = Math.min(plan.maxTokens ?? room, room);
      for (let k = 0; k < plan.n; k++) {
        const choice: Choice = {
          index: pi * plan.n + k, promptIndex: pi, text: '', completionTokens: 0, picks: [], offsets: [],
          finishReason: null, endReason: null, cut: plan.maxTokens !== undefined && plan.maxTokens > room,
          promptPicks: plan.scorePrompt != null ? prompt.map(() => null) : null,
          cachedTokens: 0,
        };
        this.choices.push(choice);
        specs.push(this.makeSpec(choice, prompt, maxNew, plan, baseSeed + choice.index));
      }
    });
    this.remaining = specs.length;
    this.done = new Promise((r) => (this.resolveDone = r));
    try {
      this.handle = loop.submit({ sequences: specs, onAdmit: (ms) => this.onAdmit(ms) });
    } catch (err) {
      if (err instanceof QueueFullError) {
        throw new ApiError(429, `The server is busy: ${err.waiting} requests are already waiting. Retry later.`, { code: 'queue_full', headers: { 'retry-after': '1' } });
      }
      if (err instanceof ShuttingDownError) {
        throw new ApiError(503, 'The server is shutting down.', { code: 'shutting_down', headers: { 'retry-after': '5' } });
      }
      throw err;
    }
    metrics.promptTokens.inc(this.promptTokens);
  }

  cancel(): void {
    this.handle.cancel();
  }

  /** The first error a sequence hit, if any. */
  get failed(): Error | null {
    return this.error;
  }

  /** Cached prompt tokens, counted once per prompt like promptTokens (its first choice's). */
  get cachedTokens(): number {
    return this.choices.reduce((a, c) => a + (c.index % this.n === 0 ? c.cachedTokens : 0), 0);
  }

  get completionTokens(): number {
    return this.choices.reduce((a, c) => a + c.completionTokens, 0);
  }

  summary(): GenerationSummary {
    const genMs = this.firstTokenAt !== null && this.lastTokenAt !== null ? this.lastTokenAt - this.firstTokenAt : 0;
    const n = this.completionTokens;
    const reasons = [...new Set(this.choices.map((c) => c.finishReason ?? c.endReason ?? 'none'))];
    return {
      promptTokens: this.promptTokens,
      completionTokens: n,
      ttftMs: this.firstTokenAt === null ? null : round(this.firstTokenAt - this.t0),
      queueMs: this.queueMs === null ? null : round(this.queueMs),
      tokensPerSecond: n > 1 && genMs > 0 ? round(((n - this.choices.length) * 1000) / genMs) : null,
      finishReason: reasons.join(','),
    };
  }

  private onAdmit(ms: number): void {
    this.queueMs = ms;
    this.metrics.queueTime.observe(ms / 1000);
  }

  private makeSpec(choice: Choice, prompt: number[], maxNew: number, plan: GenerationPlan, seed: number): SequenceSpec {
    const tok = this.runtime.tokenizer;
    const text: TextStream = tok.stream(plan.continuation);
    const stop = new StopMatcher(plan.stop);
    let lastAt: number | null = null;
    // Picks wait until their text is shown: a token whose text a stop string cuts off is
    // never listed, and each pick's offset points into the text the client gets.
    const held = new PickQueue();
    // Characters the decoder produced so far (before the stop matcher cuts).
    let decoded = 0;
    const wantPicks = plan.topLogprobs !== null;
    const emit = (s: string, final: 'no' | 'all' | 'cut') => {
      choice.text += s;
      const { picks, offsets } = final === 'all' ? held.takeAll() : held.takeBefore(choice.text.length);
      if (s.length === 0 && picks.length === 0) return;
      choice.picks.push(...picks);
      choice.offsets.push(...offsets);
      this.listener.onDelta?.(choice, s, picks, offsets);
    };
    const scoreTop = plan.scorePrompt;
    const scorePrompt = scoreTop != null
      ? (pos: number, logits: Float32Array) => {
          // The model's own distribution: no bias, penalties or temperature.
          const target = prompt[pos + 1];
          choice.promptPicks![pos + 1] = { token: target, ...logprobsOf(logits, target, scoreTop) };
        }
      : undefined;
    return {
      prompt,
      maxNewTokens: maxNew,
      ...(scorePrompt ? { scorePrompt } : {}),
      cachePrompt: plan.cachePrompt !== false,
      onCached: (n) => {
        choice.cachedTokens = n;
        this.metrics.cachedPromptTokens.inc(n);
      },
      pick: plan.grammar
        ? constrainedPicker(this.runtime.makePicker({ settings: plan.settings, seed, prompt, topLogprobs: plan.topLogprobs }), makeConstraint(tok, plan.grammar, plan.continuation))
        : this.runtime.makePicker({ settings: plan.settings, seed, prompt, topLogprobs: plan.topLogprobs }),
      isEndToken: (t) => tok.isEndToken(t),
      onToken: (p) => {
        const now = performance.now();
        if (this.firstTokenAt === null) {
          this.firstTokenAt = now;
          this.metrics.ttft.observe((now - this.t0) / 1000);
        }
        if (lastAt !== null) this.metrics.interToken.observe((now - lastAt) / 1000);
        lastAt = now;
        this.lastTokenAt = now;
        choice.completionTokens++;
        this.metrics.generatedTokens.inc();
        const piece = text.push(p.token);
        if (wantPicks) held.push(p, decoded);
        decoded += piece.length;
        const r = stop.push(piece);
        emit(r.text, r.stopped ? 'cut' : 'no');
        return !r.stopped;
      },
      onEnd: (reason, error) => {
        choice.endReason = reason;
        if (reason === 'stop' || reason === 'length') {
          // Whatever the matcher or the UTF-8 decoder still held is real output.
          const r = stop.push(text.flush());
          emit(r.text + (r.stopped ? '' : stop.flush()), r.stopped ? 'cut' : 'all');
          choice.finishReason = r.stopped ? 'stop' : reason;
        }
        if (reason === 'error' && !this.error) this.error = error ?? new Error('generation failed');
        this.listener.onChoiceEnd?.(choice);
        if (--this.remaining === 0) {
          this.metrics.e2e.observe((performance.now() - this.t0) / 1000);
          this.resolveDone();
        }
      },
    };
  }
}

/** Picks not yet shown, with the decoded-text offset where each one's text starts. */
class PickQueue {
  private picks: Picked[] = [];
  private offsets: number[] = [];

  push(p: Picked, at: number): void {
    this.picks.push(p);
    this.offsets.push(at);
  }

  /** Those whose text starts before `shown` characters. */
  takeBefore(shown: number): { picks: Picked[]; offsets: number[] } {
    let k = 0;
    while (k < this.offsets.length && this.offsets[k] < shown) k++;
    const out = { picks: this.picks.slice(0, k), offsets: this.offsets.slice(0, k) };
    this.picks = this.picks.slice(k);
    this.offsets = this.offsets.slice(k);
    return out;
  }

  takeAll(): { picks: Picked[]; offsets: number[] } {
    const out = { picks: this.picks, offsets: this.offsets };
    this.picks = [];
    this.offsets = [];
    return out;
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
