// Process entry for `relu-serve serve`: settings, logger, app, listen, then the model
// loads in the background (/health answers 503 meanwhile). SIGTERM/SIGINT drain: refuse
// new work, let running requests finish within the grace period, cut the rest, close.

import pino from 'pino';
import { buildApp, type App } from './app.js';
import { ConfigError, loadConfig, redactConfig, type ServeConfig } from './config.js';
import { loggerOptions } from './observability/logger.js';
import { loadRuntime } from './scheduler/load.js';

export interface RunServeOptions {
  configFile?: string;
  flags?: Partial<Record<keyof ServeConfig, unknown>>;
}

export async function runServe(opts: RunServeOptions = {}): Promise<App> {
  let cfg: ServeConfig;
  try {
    cfg = loadConfig({ file: opts.configFile ?? process.env.RELU_SERVE_CONFIG, flags: opts.flags });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`relu-serve: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = pino(loggerOptions(cfg.logLevel));
  log.info({ config: redactConfig(cfg) }, 'starting');
  const runtime = loadRuntime(cfg, log);
  // Nobody awaits it before the app does; keep an early failure from being "unhandled".
  runtime.catch(() => {});
  const app = await buildApp({
    runtime,
    apiKeys: cfg.apiKeys,
    corsOrigins: cfg.corsOrigins,
    bodyLimit: cfg.bodyLimit,
    jsonMaxValues: cfg.jsonMaxValues,
    maxQueue: cfg.maxQueue,
    loggerInstance: log,
  });
  try {
    await app.listen({ host: cfg.host, port: cfg.port });
  } catch (err) {
    log.fatal({ err }, `cannot listen on ${cfg.host}:${cfg.port}`);
    process.exit(1);
  }
  runtime.then(
    (rt) => log.info({ model: rt.id, nCtx: rt.nCtx, parallel: rt.nSeq }, 'model ready'),
    (err: Error) => log.error({ err }, 'model failed to load; /health reports it'),
  );
  installShutdown(app, cfg.shutdownGraceMs, log);
  return app;
}

function installShutdown(app: App, graceMs: number, log: pino.Logger): void {
  let shuttingDown = false;
  const onSignal = async (signal: string) => {
    if (shuttingDown) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    shuttingDown = true;
    log.info({ signal, graceMs }, 'draining');
    // A last resort so a stuck close can never keep the process alive forever.
    setTimeout(() => {
      log.error('drain did not finish; exiting');
      process.exit(1);
    }, graceMs + 10_000).unref();
    const state = app.relu;
    state.draining = true;
    state.loop?.stopAccepting();
    // Stop listening right away; close() resolves once every connection has ended.
    const closed = app.close();
    // close() only drops the connections idle at that moment; one whose reply ends later
    // turns idle and would hold close() for Node's keep-alive timeout (5 s). Drop those
    // as they go idle; busy ones keep their grace period.
    const sweep = setInterval(() => app.server.closeIdleConnections(), 20);
    if (state.loop) {
      const finished = await Promise.race([
        state.loop.idle().then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref()),
      ]);
      if (!finished) {
        log.warn('grace period over: cutting in-flight requests');
        await state.loop.close();
      }
    }
    // No generation is left. A connection that opened but never sent a request is not
    // idle to Node (closeIdleConnections leaves it) and would hold close() until the
    // headers timeout: after a moment for the last replies to flush, cut what remains.
    const flushed = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 250).unref())]);
    if (!flushed) app.server.closeAllConnections();
    await closed;
    clearInterval(sweep);
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void onSignal('SIGTERM'));
  process.on('SIGINT', () => void onSignal('SIGINT'));
}
