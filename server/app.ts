// buildApp(options): the whole HTTP server as a Fastify instance, separate from the
// process entry (main.ts) so tests can drive it with app.inject() or on a real socket.
// Each feature is a plugin; auth and the request log are global (skip-override) plugins.
//
// The model may be handed in loaded or as a promise: the app can listen (and answer
// /health with 503) while it loads, and starts the engine loop once it is there.

import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import cors from '@fastify/cors';
import { randomUUID } from 'node:crypto';
import { ApiError, toApiError } from './http/errors.js';
import { authPlugin } from './http/auth.js';
import { frameworkErrors, KnownRoutes, notFound } from './http/router-errors.js';
import type { ServerState } from './http/state.js';
import { healthRoutes } from './http/routes/health.js';
import { modelRoutes } from './http/routes/models.js';
import { tokenizeRoutes } from './http/routes/tokenize.js';
import { metricsRoutes } from './http/routes/metrics.js';
import { chatRoutes } from './http/routes/chat.js';
import { completionRoutes } from './http/routes/completions.js';
import { Metrics } from './observability/metrics.js';
import { requestLogPlugin } from './observability/request-log.js';
import { EngineLoop } from './scheduler/engine-loop.js';
import type { ModelRuntime } from './scheduler/runtime.js';
import type { StepInfo } from './scheduler/types.js';
import { DEFAULT_JSON_MAX_VALUES, registerJsonLimits } from './http/json-limits.js';

export interface AppOptions {
  runtime: ModelRuntime | Promise<ModelRuntime>;
  apiKeys?: string[];
  /** Allowed CORS origins; empty or absent: no CORS headers. "*" allows any. */
  corsOrigins?: string[];
  /** Bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Most values (arrays, objects, elements) a JSON body may hold; refused while it streams in (http/json-limits.ts). */
  jsonMaxValues?: number;
  /** Requests that may wait for a slot (default 64). */
  maxQueue?: number;
  /** Fastify logger option, or a pino instance via loggerInstance. Default: off. */
  logger?: FastifyServerOptions['logger'];
  loggerInstance?: FastifyServerOptions['loggerInstance'];
  /** Process-wide default metrics (off in tests that build many apps). */
  defaultMetrics?: boolean;
  /** Dispose the runtime when the app closes (default true). */
  ownsRuntime?: boolean;
  /** Observer of engine steps (tests check batching with it). */
  onStep?: (info: StepInfo) => void;
}

export type App = FastifyInstance;

export async function buildApp(opts: AppOptions): Promise<App> {
  const app = Fastify({
    logger: opts.loggerInstance ? undefined : (opts.logger ?? false),
    loggerInstance: opts.loggerInstance,
    bodyLimit: opts.bodyLimit ?? 1 << 20,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // We log one summary line per request ourselves (observability/request-log.ts).
    logController: new LogController({ disableRequestLogging: true }),
    // Idle keep-alive sockets must not hold up close() during a drain.
    forceCloseConnections: 'idle',
    // While closing, requests on open connections still reach the routes, which answer
    // with an OpenAI-shaped 503 (state.draining) instead of Fastify's own.
    return503OnClosing: false,
    frameworkErrors,
  });
  const known = new KnownRoutes();
  known.track(app);
  const metrics = new Metrics({ defaultMetrics: opts.defaultMetrics ?? true, maxQueue: opts.maxQueue ?? 64 });
  const state: ServerState = { runtime: null, loop: null, metrics, loadError: null, draining: false, maxPrompts: 16 };
  app.decorate('relu', state);

  app.setErrorHandler((err, req, reply) => {
    const api = toApiError(err);
    if (api.status >= 500 && !(err instanceof ApiError)) req.log.error({ err }, 'unhandled error');
    reply.code(api.status).headers(api.headers).send(api.body());
  });
  app.setNotFoundHandler(notFound(known));
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', String(req.id));
  });
  registerJsonLimits(app, opts.jsonMaxValues ?? DEFAULT_JSON_MAX_VALUES);

  await app.register(requestLogPlugin(metrics));
  if (opts.corsOrigins && opts.corsOrigins.length > 0) {
    const origins = opts.corsOrigins;
    await app.register(cors, {
      origin: origins.includes('*') ? true : origins,
      methods: ['GET', 'POST', 'OPTIONS'],
      allowedHeaders: ['content-type', 'authorization', 'x-api-key', 'x-request-id'],
      exposedHeaders: ['x-request-id', 'retry-after'],
    });
  }
  await app.register(authPlugin(opts.apiKeys ?? []));
  await app.register(healthRoutes);
  await app.register(metricsRoutes);
  await app.register(modelRoutes);
  await app.register(tokenizeRoutes);
  await app.register(chatRoutes);
  await app.register(completionRoutes);

  const attach = (rt: ModelRuntime) => {
    const loop = new EngineLoop(rt.ctx, {
      maxWaiting: opts.maxQueue ?? 64,
      nBatch: rt.nBatch,
      onStep: (info) => {
        if (rt.device) metrics.observeHybridStep(rt.device.stats());
        metrics.engineSteps.inc();
        metrics.batchTokens.observe(info.tokens);
        metrics.batchSequences.observe(info.sequences);
        opts.onStep?.(info);
      },
      onError: (err) => app.log.error({ err }, 'engine step failed'),
    });
    state.runtime = rt;
    state.loop = loop;
    metrics.setGaugeSource({
      running: () => loop.stats().running,
      waiting: () => loop.stats().waiting,
      kvUsage: () => loop.stats().kvUsage,
      slotsBusy: () => loop.stats().slotsBusy,
    });
    if (rt.sparsity && rt.sparsity() !== null) metrics.setSparseSource(() => rt.sparsity!());
    if (rt.stepParts) metrics.setStepPartSource(() => rt.stepParts!());
    if (rt.device) metrics.setDeviceSource(rt.device.info, () => rt.device!.stats());
  };
  const loaded = Promise.resolve(opts.runtime).then(attach, (err: Error) => {
    state.loadError = err;
    app.log.error({ err }, 'model failed to load');
  });
  app.decorate('modelReady', loaded);

  app.addHook('onClose', async () => {
    await loaded;
    if (state.loop) await state.loop.close();
    if (state.runtime && opts.ownsRuntime !== false) state.runtime.dispose();
  });
  return app;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Resolves once the model is attached (or failed to load: see relu.loadError). */
    modelReady: Promise<void>;
  }
}
