// The server-wide state routes read: the model (once loaded), the engine loop and the
// metrics. The model may still be loading when the app starts listening; /health and
// the generation routes look at `runtime` to answer 503 until then.

import type { EngineLoop } from '../scheduler/engine-loop.js';
import type { ModelRuntime } from '../scheduler/runtime.js';
import type { Metrics } from '../observability/metrics.js';
import type { GenerationSummary } from './generate.js';
import { ApiError } from './errors.js';
import { excerpt } from './excerpt.js';

export interface ServerState {
  runtime: ModelRuntime | null;
  loop: EngineLoop | null;
  metrics: Metrics;
  /** Set when loading failed; /health reports it. */
  loadError: Error | null;
  /** Set on SIGTERM: /health answers 503 so load balancers move away. */
  draining: boolean;
  /** Most sequences a request may ask for (n x prompts). */
  maxPrompts: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    relu: ServerState;
  }
  interface FastifyRequest {
    /** Filled by generation routes for the per-request summary log line. */
    genSummary: (GenerationSummary & { clientDisconnected: boolean; stream: boolean; user?: string }) | null;
  }
}

export function requireReady(state: ServerState): { runtime: ModelRuntime; loop: EngineLoop } {
  if (state.draining) throw new ApiError(503, 'The server is shutting down.', { code: 'shutting_down', headers: { 'retry-after': '5' } });
  if (!state.runtime || !state.loop) {
    if (state.loadError) throw new ApiError(503, 'The model failed to load; the server log has the reason.', { code: 'model_load_failed' });
    throw new ApiError(503, 'The model is still loading.', { code: 'model_loading', headers: { 'retry-after': '2' } });
  }
  const fault = state.runtime.fault?.();
  if (fault) throw new ApiError(503, `The model cannot be served: ${fault}.`, { code: 'model_unavailable' });
  return { runtime: state.runtime, loop: state.loop };
}

/** 404 model_not_found unless the request names the loaded model (or no model). */
export function checkModel(requested: string | undefined, runtime: ModelRuntime): void {
  if (requested === undefined || requested === runtime.id) return;
  throw new ApiError(404, `The model ${excerpt(requested)} does not exist; this server serves '${runtime.id}'.`, { param: 'model', code: 'model_not_found' });
}
