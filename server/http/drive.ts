// Drives one Generation to the client, streamed (SSE) or as one JSON body. Endpoint
// modules supply a Shaper that builds their JSON; this module owns the protocol: when
// the stream opens, disconnects (cancel the job so its slot frees at the next step),
// errors after the stream started (an error event, then close) and the summary line.

import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';
import { ModelFileChangedError } from '../scheduler/model-file-guard.js';
import { Generation, type Choice, type GenerationPlan } from './generate.js';
import { SseWriter } from './sse.js';
import { requestDone } from '../observability/request-log.js';
import type { ServerState } from './state.js';
import type { ModelRuntime } from '../scheduler/runtime.js';
import type { EngineLoop } from '../scheduler/engine-loop.js';
import type { Picked } from '../scheduler/types.js';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Prompt tokens served from a slot's prefix cache. */
  prompt_tokens_details: { cached_tokens: number };
}

export interface Shaper {
  /** Chunks sent as soon as the stream opens (chat: the role chunk per choice). */
  opening(choices: readonly Choice[]): unknown[];
  /** offsets: per pick, where its text starts in the choice's generated text. */
  delta(choice: Choice, text: string, picks: Picked[], offsets: number[]): unknown;
  end(choice: Choice): unknown;
  /** The extra chunk for stream_options.include_usage. */
  usage(u: Usage): unknown;
  /** The whole non-streamed response. */
  full(gen: Generation, u: Usage): unknown;
}

export interface DriveOptions {
  stream: boolean;
  includeUsage: boolean;
  /** OpenAI's end-user id, kept in the request's log line (for abuse tracing). */
  user?: string;
}

/** delta/end may return several chunks (an array): an echo held back until the prompt was scored, say. */
function sendAll(sse: SseWriter, chunk: unknown): void {
  if (Array.isArray(chunk)) for (const c of chunk) sse.send(c);
  else sse.send(chunk);
}

function usageOf(gen: Generation): Usage {
  const c = gen.completionTokens;
  return { prompt_tokens: gen.promptTokens, completion_tokens: c, total_tokens: gen.promptTokens + c, prompt_tokens_details: { cached_tokens: gen.cachedTokens } };
}

function generationError(err: Error): ApiError {
  // The model's file changed under it mid-generation: the same 503 a new request gets.
  if (err instanceof ModelFileChangedError) return new ApiError(503, `The model cannot be served: ${err.message}.`, { code: 'model_unavailable' });
  return new ApiError(500, `Generation failed: ${err.message}`, { code: 'internal_error' });
}

export async function drive(
  req: FastifyRequest,
  reply: FastifyReply,
  state: ServerState,
  ready: { runtime: ModelRuntime; loop: EngineLoop },
  plan: GenerationPlan,
  shaper: Shaper,
  opts: DriveOptions,
): Promise<unknown> {
  const res = reply.raw;
  const sse = opts.stream ? new SseWriter(res) : null;
  // Throws ApiError (context too long, queue full, shutting down) before any byte is sent.
  const gen = new Generation(ready.loop, ready.runtime, plan, state.metrics, {
    onDelta: (choice, text, picks, offsets) => sse && sendAll(sse, shaper.delta(choice, text, picks, offsets)),
    onChoiceEnd: (choice) => {
      if (sse && choice.finishReason) sendAll(sse, shaper.end(choice));
    },
  });
  let disconnected = false;
  let finished = false;
  const onClose = () => {
    if (finished || res.writableEnded) return;
    disconnected = true;
    state.metrics.disconnects.inc();
    gen.cancel();
  };
  res.on('close', onClose);
  const summarise = () => {
    req.genSummary = { ...gen.summary(), clientDisconnected: disconnected, stream: opts.stream, ...(opts.user !== undefined ? { user: opts.user } : {}) };
  };

  if (sse) {
    reply.hijack();
    sse.start({ 'x-request-id': String(req.id) });
    for (const chunk of shaper.opening(gen.choices)) sse.send(chunk);
    await gen.done;
    finished = true;
    res.off('close', onClose);
    summarise();
    const cutShort = gen.choices.some((c) => c.endReason === 'cancelled');
    if (gen.failed || (cutShort && !disconnected)) {
      const err = gen.failed ? generationError(gen.failed) : new ApiError(503, 'The server is shutting down; generation was cut short.', { code: 'shutting_down' });
      if (gen.failed) req.log.error({ err: gen.failed }, 'generation failed');
      sse.send(err.body());
      sse.end();
      requestDone(req, state.metrics, err.status, reply.elapsedTime);
      return;
    }
    if (!disconnected) {
      if (opts.includeUsage) sse.send(shaper.usage(usageOf(gen)));
      sse.done();
    }
    requestDone(req, state.metrics, disconnected ? 499 : 200, reply.elapsedTime);
    return;
  }

  await gen.done;
  finished = true;
  res.off('close', onClose);
  summarise();
  if (disconnected) {
    // Nobody to answer; 499 (client closed request) marks it in logs and metrics.
    reply.hijack();
    requestDone(req, state.metrics, 499, reply.elapsedTime);
    return;
  }
  if (gen.failed) {
    req.log.error({ err: gen.failed }, 'generation failed');
    throw generationError(gen.failed);
  }
  if (gen.choices.some((c) => c.endReason === 'cancelled')) {
    throw new ApiError(503, 'The server is shutting down; generation was cut short.', { code: 'shutting_down' });
  }
  reply.header('x-request-id', String(req.id));
  return shaper.full(gen, usageOf(gen));
}
